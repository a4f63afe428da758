// What `ballast train` reports in its pod's termination message (≤ 4096 bytes) for the operator's promotion gate:
// built from the version's metadata and encoded to fit. The contract itself is src/api/train-result.ts.
import type { ModelMetadata } from "../runtime/metadata.js";
import { MAX_TERMINATION_MESSAGE_BYTES, TRAIN_RESULT_FORMAT, TrainResultError, type TrainSuccess } from "../api/train-result.js";

export * from "../api/train-result.js";

/** 4 significant digits: what a gate needs, and short enough to fit. */
export function round4(x: number | null | undefined): number | null {
  return x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toPrecision(4));
}

/** The result of a version trained with evaluation (every version `ballast train` writes now). */
export function trainResultFromMetadata(meta: ModelMetadata): TrainSuccess {
  const e = meta.evaluation;
  if (!e) throw new TrainResultError(`${meta.model}/${meta.version} has no evaluation (written by an older ballast train)`);
  const trials = meta.trials ?? [];
  const selected = trials.find((t) => t.selected);
  const pair = (h: typeof e.recent) => ({ rows: h.rows, candidate: round4(h.candidate), serving: round4(h.serving) });
  return {
    format: TRAIN_RESULT_FORMAT,
    version: meta.version,
    parentVersion: meta.parentVersion,
    model: meta.model,
    metric: e.metric,
    higherIsBetter: e.higherIsBetter,
    backend: meta.backend,
    recent: pair(e.recent),
    original: pair(e.original),
    latencyMsPerRow: { candidate: round4(e.latencyMsPerRow.candidate) ?? 0, serving: round4(e.latencyMsPerRow.serving) },
    validation: round4(selected?.validation),
    trainRows: meta.dataWindow.trainRows,
    feedbackRows: meta.dataWindow.feedbackRows ?? 0,
    trials: trials.map((t) => ({ name: t.name, validation: round4(t.validation) })),
  };
}

/** JSON of at most 4096 bytes: trials are dropped from the end (the selected one's score is `validation`). */
export function encodeTrainResult(result: TrainSuccess): string {
  const trials = [...result.trials];
  let text = JSON.stringify({ ...result, trials });
  while (Buffer.byteLength(text) > MAX_TERMINATION_MESSAGE_BYTES && trials.length > 0) {
    trials.pop();
    text = JSON.stringify({ ...result, trials });
  }
  if (Buffer.byteLength(text) > MAX_TERMINATION_MESSAGE_BYTES)
    throw new TrainResultError(`train result is ${Buffer.byteLength(text)} bytes even without trials`);
  return text;
}

/** `{"format", "error"}` with the message cut (at a character, marked "…") to fit 4096 bytes. */
export function encodeTrainFailure(message: string): string {
  const whole = JSON.stringify({ format: TRAIN_RESULT_FORMAT, error: message });
  if (Buffer.byteLength(whole) <= MAX_TERMINATION_MESSAGE_BYTES) return whole;
  const room = MAX_TERMINATION_MESSAGE_BYTES - Buffer.byteLength(JSON.stringify({ format: TRAIN_RESULT_FORMAT, error: "…" }));
  let kept = "";
  let used = 0;
  for (const ch of message) {
    // A character's size inside a JSON string, escapes included.
    const bytes = Buffer.byteLength(JSON.stringify(ch)) - 2;
    if (used + bytes > room) break;
    kept += ch;
    used += bytes;
  }
  return JSON.stringify({ format: TRAIN_RESULT_FORMAT, error: `${kept}…` });
}
