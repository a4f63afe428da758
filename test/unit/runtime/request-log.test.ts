// The durable request log: group commit, segments, size bound, torn tails, and the join that feeds retraining.
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { RequestLog, joinLog, listSegments, readLog, type ReadProblem } from "../../../src/runtime/request-log.js";
import { useTempDirs } from "./temp-dirs.js";

const header = { model: "m", version: "v1", task: "classification" as const, label: "y", features: ["a", "b"] };
const tempDir = useTempDirs("ballast-log-");

async function records(dir: string, problems: ReadProblem[] = []): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const r of readLog(dir, (p) => problems.push(p))) out.push(r);
  return out;
}

describe("RequestLog", () => {
  it("makes records durable on commit and shares one fdatasync among concurrent commits", async () => {
    const dir = tempDir();
    const log = await RequestLog.open(dir, header, { flushIntervalMs: 60_000 });
    const commits: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      log.append({ kind: "inference", id: `r${i}`, ts: i, version: "v1", rows: [[i, "x"]], predictions: ["p"] });
      commits.push(log.commit());
    }
    await Promise.all(commits);
    expect(log.getStats().syncs).toBeLessThanOrEqual(3);
    const recs = await records(dir);
    expect(recs).toHaveLength(51);
    expect(recs[0]).toMatchObject({ kind: "segment", model: "m", features: ["a", "b"] });
    await log.close();
  });

  it("starts a new segment at each open and rotates by size, deleting the oldest past the bound", async () => {
    const dir = tempDir();
    const log = await RequestLog.open(dir, header, { segmentBytes: 2048, maxBytes: 8192, flushIntervalMs: 60_000 });
    for (let i = 0; i < 400; i++) {
      log.append({ kind: "feedback", id: `r${i}`, row: 0, label: "yes", ts: i });
      if (i % 20 === 19) await log.commit();
    }
    await log.close();
    const segments = await listSegments(dir);
    const total = segments.reduce((n, s) => n + fs.statSync(s.file).size, 0);
    expect(segments.length).toBeGreaterThan(2);
    expect(total).toBeLessThanOrEqual(8192 + 2048 + 200);
    expect(log.getStats().segmentsDeleted).toBeGreaterThan(0);
    // The newest records survive rotation; every segment still begins with its header.
    const recs = (await records(dir)) as { kind: string; id?: string }[];
    expect(recs.filter((r) => r.kind === "feedback").at(-1)).toMatchObject({ id: "r399" });
    for (const s of segments) expect(fs.readFileSync(s.file, "utf8").startsWith('{"kind":"segment"')).toBe(true);
    const reopened = await RequestLog.open(dir, header);
    expect(reopened.getStats().segment).toBe(segments.at(-1)!.seq + 1);
    await reopened.close();
  });

  it("skips a torn last line silently and reports a corrupt line in the middle", async () => {
    const dir = tempDir();
    const log = await RequestLog.open(dir, header);
    log.append({ kind: "inference", id: "a", ts: 1, version: "v1", rows: [[1, 2]], predictions: ["x"] });
    await log.close();
    const [segment] = await listSegments(dir);
    fs.appendFileSync(segment!.file, 'garbage line\n{"kind":"feedback","id":"a","row":0,"label":"x","ts":2}\n{"kind":"feedb');
    const problems: ReadProblem[] = [];
    const recs = await records(dir, problems);
    expect(recs.map((r) => (r as { kind: string }).kind)).toEqual(["segment", "inference", "feedback"]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file: segment!.file, line: 3 });
  });

  it("joins inference rows with feedback by id and row, using the header's feature names", async () => {
    const dir = tempDir();
    const log = await RequestLog.open(dir, header);
    log.append({ kind: "inference", id: "a", ts: 10, version: "v1", rows: [[1, "u"], [2, "v"]], predictions: ["yes", "no"] });
    log.append({ kind: "inference", id: "b", ts: 20, version: "v1", rows: [[3, "w"]], predictions: ["no"] });
    log.append({ kind: "feedback", id: "a", row: 1, label: "yes", ts: 30 });
    log.append({ kind: "feedback", id: "b", row: 0, label: "no", ts: 31 });
    log.append({ kind: "feedback", id: "ghost", row: 0, label: "no", ts: 32 });
    await log.close();
    const joined = await joinLog(dir);
    expect(joined.label).toBe("y");
    expect(joined.task).toBe("classification");
    expect(joined.inferenceRows).toBe(3);
    expect(joined.feedbackRecords).toBe(3);
    expect(joined.rows.map((r) => ({ id: r.id, row: r.row, features: r.features, prediction: r.prediction, label: r.label }))).toEqual([
      { id: "a", row: 1, features: { a: 2, b: "v" }, prediction: "no", label: "yes" },
      { id: "b", row: 0, features: { a: 3, b: "w" }, prediction: "no", label: "no" },
    ]);
  });
});
