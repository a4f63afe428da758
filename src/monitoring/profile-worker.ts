// Worker thread of `profileColumnsInParallel`: profiles the numeric columns it is given and posts the profiles
// back. It loads only the numeric profile (not the dataset profile and its schema checker): start-up is part of
// the wall time it saves.
import { parentPort, workerData } from "node:worker_threads";
import { NumericProfile, type NumericProfileJSON } from "./numeric-profile.js";
import type { ProfileWorkerResult, ProfileWorkerTask } from "./parallel-profile.js";

const task = workerData as ProfileWorkerTask;
let result: ProfileWorkerResult;
try {
  const features: Record<string, NumericProfileJSON> = {};
  for (const [name, values] of Object.entries(task.columns)) {
    const profile = new NumericProfile(task.options);
    profile.addNumbers(values);
    features[name] = profile.toJSON();
  }
  result = { features };
} catch (err) {
  result = { error: err instanceof Error ? err.message : String(err) };
}
parentPort!.postMessage(result);
