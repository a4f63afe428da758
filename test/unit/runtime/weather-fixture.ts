// Real data for runtime tests: vega-datasets' weather.csv, a model trained on Seattle, held-out Seattle and New York rows.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { openStore } from "../../../src/runtime/store.js";
import { loadWeatherDays, splitWeather, weatherCsv, weatherCsvPath, WEATHER_FEATURES, type WeatherDay } from "../../../src/demo/weather-data.js";
import { train, type TrainOptions, type TrainResult } from "../../../src/training/trainer.js";

export type WeatherRow = WeatherDay;
export { WEATHER_FEATURES, weatherCsvPath };

export function loadWeather(): WeatherRow[] {
  return loadWeatherDays();
}

export interface WeatherFixture {
  dir: string;
  storeDir: string;
  trainCsv: string;
  trained: TrainResult;
  /** Seattle rows never seen in training (same distribution as training). */
  seattleHoldout: WeatherRow[];
  /** New York rows: real covariate drift. */
  newYork: WeatherRow[];
  cleanup(): void;
}

/** Trains `weather/v1` on Seattle minus `holdoutRows` random Seattle rows; New York gives `newYorkRows` rows. */
export async function weatherFixture(
  options: { holdoutRows?: number; newYorkRows?: number; epochs?: number; train?: Partial<TrainOptions> } = {},
): Promise<WeatherFixture> {
  const {
    seattleTraining: seattleTrain,
    seattleTraffic: seattleHoldout,
    newYorkTraffic: newYork,
  } = splitWeather(loadWeatherDays(), options.holdoutRows ?? 300, options.newYorkRows ?? 300);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ballast-weather-"));
  const trainCsv = path.join(dir, "seattle-train.csv");
  fs.writeFileSync(trainCsv, weatherCsv(seattleTrain));
  const storeDir = path.join(dir, "store");
  const trained = await trainWeather(storeDir, trainCsv, { epochs: options.epochs ?? 8, ...options.train });
  return { dir, storeDir, trainCsv, trained, seattleHoldout, newYork, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** Trains the next `weather/v<N>` in `storeDir` on `trainCsv`: a small classifier, options overridable. */
export function trainWeather(storeDir: string, trainCsv: string, overrides: Partial<TrainOptions> = {}): Promise<TrainResult> {
  return train({
    data: [trainCsv],
    store: openStore(storeDir),
    model: "weather",
    label: "weather",
    task: "classification",
    features: [...WEATHER_FEATURES],
    epochs: 8,
    holdout: 0.2,
    validation: 0.1,
    seed: 42,
    batchSize: 64,
    learningRate: 0.01,
    hiddenUnits: [16],
    l2: 1e-4,
    patience: 5,
    backend: "auto",
    ...overrides,
  });
}

/** OIP v2 named-tensor request for rows (numbers as FP32). */
export function inferBody(rows: readonly WeatherRow[], id?: string): object {
  return {
    ...(id ? { id } : {}),
    inputs: WEATHER_FEATURES.map((name) => ({ name, shape: [rows.length], datatype: "FP32", data: rows.map((r) => Number(r[name])) })),
  };
}
