// A retraining pod's termination message as the gate's input: the `ballast.dev/train-result/v1` result, or
// why there is none. A message that is not such JSON (the log tail a crash leaves under
// FallbackToLogsOnError) becomes an error with its text, never a crash.
import { TrainResultError, isTrainFailure, parseTrainResult } from "../../api/index.js";
import type { CandidateReport } from "./gate.js";

export function parseCandidateReport(message: string): { report: CandidateReport } | { error: string } {
  let result;
  try {
    result = parseTrainResult(message);
  } catch (err) {
    if (!(err instanceof TrainResultError)) throw err;
    const looksLikeJson = message.trimStart().startsWith("{");
    return { error: looksLikeJson ? err.message : `no result (log tail: ${message.trim().split("\n").slice(-3).join(" | ").slice(0, 512)})` };
  }
  if (isTrainFailure(result)) return { error: result.error.slice(0, 1024) };
  const report: CandidateReport = {
    version: result.version,
    metric: result.metric,
    higherIsBetter: result.higherIsBetter,
    recent: result.recent,
    original: result.original,
    latencyMsPerRow: result.latencyMsPerRow,
  };
  if (result.validation !== null) report.validation = result.validation;
  return { report };
}
