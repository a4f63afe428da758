// The durable request log: group commit, segments, size bound, torn tails, and the join that feeds retraining;
// one writer per directory (lock), segments sealed when complete, bounds over every pod's directory of a model.
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { LOCK_FILE, LogLockedError, readLogLock } from "../../../src/runtime/log-lock.js";
import { enforceLogBounds, type DroppedSegment } from "../../../src/runtime/log-retention.js";
import { RequestLog, joinLog, listSegments, readLog, segmentName, storeLogLocation, type ReadProblem } from "../../../src/runtime/request-log.js";
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
    expect(log.getStats().dropped.segments).toBeGreaterThan(0);
    // The newest records survive rotation; every segment still begins with its header.
    const recs = (await records(dir)) as { kind: string; id?: string }[];
    expect(recs.filter((r) => r.kind === "feedback").at(-1)).toMatchObject({ id: "r399" });
    for (const s of segments) expect(fs.readFileSync(s.file, "utf8").startsWith('{"kind":"segment"')).toBe(true);
    const reopened = await RequestLog.open(dir, header);
    expect(reopened.getStats().segment).toBe(segments.at(-1)!.seq + 1);
    await reopened.close();
  });

  it("seals a quiet segment once it holds records and is segmentMaxAgeMs old (for a shipper), never an empty one", async () => {
    const dir = tempDir();
    const log = await RequestLog.open(dir, header, { segmentMaxAgeMs: 100, flushIntervalMs: 20 });
    await new Promise((r) => setTimeout(r, 300));
    // Nothing logged: the open segment (header only) stays open however old it is.
    expect((await listSegments(dir)).map((s) => s.sealed)).toEqual([false]);
    log.append({ kind: "feedback", id: "r1", row: 0, label: "yes", ts: 1 });
    await log.commit();
    // Sealing renames the segment, then opens the next: wait for both, or a listing between the two sees only one.
    const sealedAndNext = async () => {
      const listed = await listSegments(dir);
      return listed.length === 2 && listed[0]!.sealed;
    };
    for (const deadline = Date.now() + 5000; !(await sealedAndNext()) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    const segments = await listSegments(dir);
    expect(segments.map((s) => s.sealed)).toEqual([true, false]);
    expect(fs.readFileSync(segments[0]!.file, "utf8")).toContain('"id":"r1"');
    await log.close();
  });

  /** A one-prediction log with `text` appended to its segment after close, as read back. */
  async function readAfterAppending(text: string): Promise<{ kinds: string[]; problems: ReadProblem[]; file: string }> {
    const dir = tempDir();
    const log = await RequestLog.open(dir, header);
    log.append({ kind: "inference", id: "a", ts: 1, version: "v1", rows: [[1, 2]], predictions: ["x"] });
    await log.close();
    const [segment] = await listSegments(dir);
    fs.appendFileSync(segment!.file, text);
    const problems: ReadProblem[] = [];
    const kinds = (await records(dir, problems)).map((r) => (r as { kind: string }).kind);
    return { kinds, problems, file: segment!.file };
  }

  it("skips a torn last line silently and reports a corrupt line in the middle", async () => {
    const { kinds, problems, file } = await readAfterAppending('garbage line\n{"kind":"feedback","id":"a","row":0,"label":"x","ts":2}\n{"kind":"feedb');
    expect(kinds).toEqual(["segment", "inference", "feedback"]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ file, line: 3 });
  });

  it("reports a line too long to be a record (garbage in a segment) and reads on", async () => {
    const { kinds, problems, file } = await readAfterAppending("z".repeat(65 * 1024 * 1024) + '\n{"kind":"feedback","id":"a","row":0,"label":"x","ts":2}\n');
    expect(kinds).toEqual(["segment", "inference", "feedback"]);
    expect(problems).toEqual([{ file, line: 3, message: "line too long to be a record; skipped" }]);
  });

  it("joins inference rows with feedback by id and row, using the header's feature names", async () => {
    const dir = tempDir();
    const log = await RequestLog.open(dir, header);
    log.append({
      kind: "inference",
      id: "a",
      ts: 10,
      version: "v1",
      rows: [
        [1, "u"],
        [2, "v"],
      ],
      predictions: ["yes", "no"],
    });
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

const DAY = 86_400_000;

/** A segment as a sidecar leaves it: a header, `labels` labelled predictions, last written `ageMs` ago. */
function writeSegment(dir: string, seq: number, opts: { sealed: boolean; labels: number; ageMs: number }): number {
  fs.mkdirSync(dir, { recursive: true });
  const pod = path.basename(dir);
  const lines = [JSON.stringify({ kind: "segment", ...header, startedAt: new Date().toISOString() })];
  for (let i = 0; i < opts.labels; i++) {
    const id = `${pod}-${seq}-${i}`;
    lines.push(JSON.stringify({ kind: "inference", id, ts: i, version: "v1", rows: [[i, "x"]], predictions: ["no"] }));
    lines.push(JSON.stringify({ kind: "feedback", id, row: 0, label: "yes", ts: i }));
  }
  const file = path.join(dir, segmentName(seq, opts.sealed));
  fs.writeFileSync(file, lines.join("\n") + "\n");
  const when = new Date(Date.now() - opts.ageMs);
  fs.utimesSync(file, when, when);
  return fs.statSync(file).size;
}

/** What `kill -9` leaves: the lock still naming the dead process. */
function leaveLock(dir: string, pod: string): void {
  fs.writeFileSync(path.join(dir, LOCK_FILE), JSON.stringify({ pod, pid: 999_999, host: "gone", startedAt: "2025-01-01T00:00:00.000Z" }) + "\n");
}

describe("RequestLog: one writer per directory, sealed segments", () => {
  it("refuses a directory another pod writes, and lets a restart of the same pod take it over, sealing what the crash left open", async () => {
    const dir = tempDir();
    writeSegment(dir, 1, { sealed: true, labels: 2, ageMs: 0 });
    writeSegment(dir, 2, { sealed: false, labels: 3, ageMs: 0 });
    fs.appendFileSync(path.join(dir, segmentName(2)), '{"kind":"feedb'); // torn by the kill
    leaveLock(dir, "weather-serving-abc");

    await expect(RequestLog.open(dir, header, { pod: "weather-serving-xyz" })).rejects.toThrow(LogLockedError);
    await expect(RequestLog.open(dir, header, { pod: "weather-serving-xyz" })).rejects.toThrow(/written by pod weather-serving-abc \(pid 999999/);

    const events: unknown[] = [];
    const log = await RequestLog.open(dir, header, { pod: "weather-serving-abc", onEvent: (e) => events.push(e) });
    expect(events).toContainEqual({ event: "log-takeover", dir, previous: expect.objectContaining({ pod: "weather-serving-abc", pid: 999_999 }) });
    expect(await readLogLock(dir)).toMatchObject({ pod: "weather-serving-abc", pid: process.pid });
    expect((await listSegments(dir)).map((s) => [s.seq, s.sealed])).toEqual([
      [1, true],
      [2, true],
      [3, false],
    ]);
    log.append({ kind: "inference", id: "after-restart", ts: 9, version: "v1", rows: [[9, "z"]], predictions: ["no"] });
    log.append({ kind: "feedback", id: "after-restart", row: 0, label: "yes", ts: 10 });
    await log.close();

    // A clean close releases the directory: every segment sealed, no lock; the torn line is skipped on read.
    expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
    expect((await listSegments(dir)).every((s) => s.sealed)).toBe(true);
    const joined = await joinLog(dir);
    expect(joined.problems).toEqual([]);
    expect(joined.rows.map((r) => r.id)).toHaveLength(6);
    expect(joined.rows.at(-1)).toMatchObject({ id: "after-restart", label: "yes" });
  });

  it("seals segments on rotation and at close; a reader that listed a segment before it was sealed still reads it", async () => {
    const dir = tempDir();
    const log = await RequestLog.open(dir, header, { segmentBytes: 2048, flushIntervalMs: 60_000 });
    for (let i = 0; i < 100; i++) {
      log.append({ kind: "feedback", id: `r${i}`, row: 0, label: "yes", ts: i });
      if (i % 10 === 9) await log.commit();
    }
    const live = await listSegments(dir);
    expect(live.length).toBeGreaterThan(2);
    expect(live.map((s) => s.sealed)).toEqual([...live.slice(1).map(() => true), false]);

    const reader = readLog(dir);
    const first = await reader.next(); // lists the segments, the open one by its open name
    await log.close(); // renames it while the reader is half way
    const rest: unknown[] = [];
    for await (const r of reader) rest.push(r);
    expect(first.value).toMatchObject({ kind: "segment" });
    expect(1 + rest.length).toBe(live.length + 100);
    const sealed = await listSegments(dir);
    expect(sealed.every((s) => s.sealed && s.file.endsWith(".sealed.jsonl"))).toBe(true);
    expect(log.getStats().sealed).toBe(live.length);
  });

  it("puts a pod's log under <store>/<model>/_log/<pod>/ and refuses read-only stores and unsafe pod names", () => {
    expect(storeLogLocation("pvc://models/store", "weather", "weather-serving-7d9f-abcde", { pvcMountRoot: "/mnt/models" })).toEqual({
      root: "/mnt/models/models/store/weather/_log",
      dir: "/mnt/models/models/store/weather/_log/weather-serving-7d9f-abcde",
    });
    expect(storeLogLocation("file:///srv/store", "weather", "p1").dir).toBe("/srv/store/weather/_log/p1");
    expect(() => storeLogLocation("https://models.example/store", "weather", "p1")).toThrow(/read-only over http\(s\): use --data-dir/);
    expect(() => storeLogLocation("file:///srv/store", "weather", "../etc")).toThrow(/pod name "..\/etc"/);
  });
});

describe("RequestLog bounds over every pod's directory of a model", () => {
  it("drops sealed segments oldest first until the model's log fits, counts segments, bytes and labels, and never touches an open segment", async () => {
    const root = tempDir();
    const old = path.join(root, "weather-serving-old");
    const crashed = path.join(root, "weather-serving-crashed");
    const old1 = writeSegment(old, 1, { sealed: true, labels: 5, ageMs: 3 * DAY });
    const old2 = writeSegment(old, 2, { sealed: true, labels: 4, ageMs: 2 * DAY });
    // The oldest bytes, but open: its pod died without sealing it and no one else may.
    const open = writeSegment(crashed, 1, { sealed: false, labels: 5, ageMs: 4 * DAY });
    leaveLock(crashed, "weather-serving-crashed");

    const dropped: DroppedSegment[] = [];
    const log = await RequestLog.open(path.join(root, "weather-serving-new"), header, {
      pod: "weather-serving-new",
      boundsRoot: root,
      maxBytes: open + 200, // room for the new pod's segment header, not for old2
      onDrop: (d) => dropped.push(d),
    });
    expect(dropped.map((d) => [path.basename(d.file), d.feedback, d.reason])).toEqual([
      [segmentName(1, true), 5, "size"],
      [segmentName(2, true), 4, "size"],
    ]);
    expect(log.getStats().dropped).toEqual({ segments: 2, bytes: old1 + old2, feedback: 9 });
    // The finished pod's directory is gone with its last segment; the crashed pod's stays readable.
    expect(fs.existsSync(old)).toBe(false);
    expect((await joinLog(crashed)).rows).toHaveLength(5);
    await log.close();
  });

  it("drops sealed segments last written before the age bound; younger ones of finished pods stay readable", async () => {
    const dir = path.join(tempDir(), "weather-serving-old");
    writeSegment(dir, 1, { sealed: true, labels: 3, ageMs: 40 * DAY });
    writeSegment(dir, 2, { sealed: true, labels: 2, ageMs: 1 * DAY });
    writeSegment(dir, 3, { sealed: false, labels: 1, ageMs: 50 * DAY });
    const totals = await enforceLogBounds([dir], { maxBytes: 1 << 30, maxAgeMs: 30 * DAY });
    expect(totals).toMatchObject({ segments: 1, feedback: 3 });
    expect((await listSegments(dir)).map((s) => s.seq)).toEqual([2, 3]);
    expect((await joinLog(dir)).rows).toHaveLength(3);
  });

  it("counts each dropped segment once when several sidecars apply the bounds at the same time", async () => {
    const root = tempDir();
    for (let pod = 0; pod < 3; pod++)
      for (let seq = 1; seq <= 4; seq++) writeSegment(path.join(root, `p${pod}`), seq, { sealed: true, labels: 2, ageMs: (10 - seq) * 1000 });
    const dirs = ["p0", "p1", "p2"].map((p) => path.join(root, p));
    const runs = await Promise.all([1, 2, 3].map(() => enforceLogBounds(dirs, { maxBytes: 0, maxAgeMs: 0 })));
    expect(runs.reduce((n, r) => n + r.segments, 0)).toBe(12);
    expect(runs.reduce((n, r) => n + r.feedback, 0)).toBe(24);
    expect(fs.readdirSync(root)).toEqual([]);
  });
});

describe("joinLog on a log of mostly unlabelled predictions", () => {
  it("keeps only labelled rows and still counts every inference row, whatever the values hold", async () => {
    const dir = tempDir();
    const log = await RequestLog.open(dir, header, { flushIntervalMs: 60_000 });
    // Values that look like JSON structure inside strings must not confuse the count of rows.
    log.append({
      kind: "inference",
      id: "tricky",
      ts: 1,
      version: "v1",
      rows: [
        [1, '],["x'],
        [2, '\\"]['],
        [3, "[[["],
      ],
      predictions: ["a", "b", "c"],
    });
    for (let i = 0; i < 50; i++) log.append({ kind: "inference", id: `r${i}`, ts: 10 + i, version: "v1", rows: [[i, "x"]], predictions: ["no"] });
    log.append({ kind: "inference", id: 'quote"id', ts: 99, version: "v1", rows: [[7, "q"]], predictions: ["no"] });
    log.append({ kind: "feedback", id: "r7", row: 0, label: "yes", ts: 100 });
    log.append({ kind: "feedback", id: 'quote"id', row: 0, label: "no", ts: 101 });
    await log.close();
    const joined = await joinLog(dir);
    expect(joined.inferenceRows).toBe(3 + 50 + 1);
    expect(joined.feedbackRecords).toBe(2);
    expect(joined.rows.map((r) => [r.id, r.features, r.label])).toEqual([
      ["r7", { a: 7, b: "x" }, "yes"],
      ['quote"id', { a: 7, b: "q" }, "no"],
    ]);
  });
});
