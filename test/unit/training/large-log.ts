// A large sidecar request log, written fast: one block of single-row predictions with one label per 1000,
// repeated under new request ids until the log is as big as asked (sealed segments of the documented format).
import fs from "node:fs";
import path from "node:path";

const REQUESTS_PER_SEGMENT = 400_000;
const LABEL_EVERY = 1000;
const TAG = "SEG0000000";

/** Writes about `bytes` of log into `dir`; returns what it wrote and how many rows have labels. */
export function writeSparseLog(dir: string, bytes: number): { bytes: number; segments: number; labelled: number } {
  fs.mkdirSync(dir, { recursive: true });
  const header = JSON.stringify({
    kind: "segment",
    model: "m",
    version: "v1",
    task: "classification",
    label: "y",
    features: ["a", "b", "c", "d"],
    startedAt: "2026-01-01T00:00:00.000Z",
  });
  let seed = 1;
  const random = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const inference: string[] = [];
  const feedback: string[] = [];
  for (let i = 0; i < REQUESTS_PER_SEGMENT; i++) {
    const [a, b, c, d] = [random(), random(), random(), random()].map((v) => Math.round(v * 10_000) / 1000);
    const id = `${TAG}-r${i}`;
    inference.push(JSON.stringify({ kind: "inference", id, ts: 1_767_225_600_000 + i, version: "v1", rows: [[a, b, c, d]], predictions: ["no"] }));
    // The label is a rule of the features, so a model can learn it.
    if (i % LABEL_EVERY === 0)
      feedback.push(JSON.stringify({ kind: "feedback", id, row: 0, label: a! + c! > b! + d! ? "yes" : "no", ts: 1_767_225_600_000 + i + 5 }));
  }
  const block = [header, ...inference, ...feedback].join("\n") + "\n";
  let written = 0;
  let segments = 0;
  while (written < bytes) {
    segments++;
    const text = block.replaceAll(TAG, `SEG${String(segments).padStart(7, "0")}`);
    fs.writeFileSync(path.join(dir, `segment-${String(segments).padStart(10, "0")}.sealed.jsonl`), text);
    written += Buffer.byteLength(text);
  }
  return { bytes: written, segments, labelled: segments * feedback.length };
}
