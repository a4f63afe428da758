// Real data for runtime tests: vega-datasets' weather.csv, a model trained on Seattle, held-out Seattle and New York rows.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { parse } from "csv-parse/sync";
import { openStore } from "../../../src/runtime/store.js";
import { permutation, seededRandom } from "../../../src/training/split.js";
import { train, type TrainOptions, type TrainResult } from "../../../src/training/trainer.js";

export interface WeatherRow {
  location: string;
  date: string;
  precipitation: string;
  temp_max: string;
  temp_min: string;
  wind: string;
  weather: string;
}

export const WEATHER_FEATURES = ["precipitation", "temp_max", "temp_min", "wind"] as const;

/** weather.csv located through the package (not a hard-coded node_modules path). */
export function weatherCsvPath(): string {
  const require = createRequire(import.meta.url);
  // The package exports only build/index.js; its data/ folder sits next to build/.
  return path.join(path.dirname(require.resolve("vega-datasets")), "..", "data", "weather.csv");
}

export function loadWeather(): WeatherRow[] {
  return parse(fs.readFileSync(weatherCsvPath(), "utf8"), { columns: true }) as WeatherRow[];
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

function writeCsv(file: string, rows: readonly WeatherRow[]): void {
  const cols: (keyof WeatherRow)[] = ["location", "date", "precipitation", "temp_max", "temp_min", "wind", "weather"];
  fs.writeFileSync(file, cols.join(",") + "\n" + rows.map((r) => cols.map((c) => r[c]).join(",")).join("\n") + "\n");
}

/** Trains `weather/v1` on Seattle minus `holdoutRows` random Seattle rows; New York gives `newYorkRows` rows. */
export async function weatherFixture(options: { holdoutRows?: number; newYorkRows?: number; epochs?: number; train?: Partial<TrainOptions> } = {}): Promise<WeatherFixture> {
  const rows = loadWeather();
  const seattle = rows.filter((r) => r.location === "Seattle");
  const ny = rows.filter((r) => r.location === "New York");
  const order = Array.from(permutation(seattle.length, seededRandom(7)));
  const holdoutRows = options.holdoutRows ?? 300;
  const seattleHoldout = order.slice(0, holdoutRows).map((i) => seattle[i]!);
  const seattleTrain = order.slice(holdoutRows).map((i) => seattle[i]!);
  const newYork = Array.from(permutation(ny.length, seededRandom(8)))
    .slice(0, options.newYorkRows ?? 300)
    .map((i) => ny[i]!);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ballast-weather-"));
  const trainCsv = path.join(dir, "seattle-train.csv");
  writeCsv(trainCsv, seattleTrain);
  const storeDir = path.join(dir, "store");
  const trained = await train({
    data: [trainCsv],
    store: openStore(storeDir),
    model: "weather",
    label: "weather",
    task: "classification",
    features: [...WEATHER_FEATURES],
    epochs: options.epochs ?? 8,
    holdout: 0.2,
    validation: 0.1,
    seed: 42,
    batchSize: 64,
    learningRate: 0.01,
    hiddenUnits: [16],
    l2: 1e-4,
    patience: 5,
    backend: "auto",
    ...options.train,
  });
  return { dir, storeDir, trainCsv, trained, seattleHoldout, newYork, cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** OIP v2 named-tensor request for rows (numbers as FP32). */
export function inferBody(rows: readonly WeatherRow[], id?: string): object {
  return {
    ...(id ? { id } : {}),
    inputs: WEATHER_FEATURES.map((name) => ({ name, shape: [rows.length], datatype: "FP32", data: rows.map((r) => Number(r[name])) })),
  };
}
