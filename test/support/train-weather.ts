// `bin/ballast train` of the weather classifier (vega-datasets weather.csv, 2 epochs) into any store: the model
// the serving tests load, whatever the store's scheme.
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const repoRoot = new URL("../../", import.meta.url).pathname;

export interface TrainRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs it to the end with `env` added to this process's environment (an s3:// store's endpoint and keys). */
export function trainWeather(store: string, env: Record<string, string> = {}, extraArgs: string[] = []): TrainRun {
  const res = spawnSync(
    join(repoRoot, "bin/ballast"),
    [
      "train",
      "--data",
      join(repoRoot, "node_modules/vega-datasets/data/weather.csv"),
      "--store",
      store,
      "--model",
      "weather",
      "--label",
      "weather",
      "--features",
      "precipitation,temp_max,temp_min,wind",
      "--epochs",
      "2",
      ...extraArgs,
    ],
    { encoding: "utf8", env: { ...process.env, ...env } },
  );
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}
