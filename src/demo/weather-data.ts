// The demo's real data: vega-datasets' weather.csv (Seattle and New York, 2012–2015). Seattle days train the
// model, other Seattle days are the calm traffic, New York days the drifted traffic.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { parse } from "csv-parse/sync";
import { permutation, seededRandom } from "../training/split.js";

export const WEATHER_FEATURES = ["precipitation", "temp_max", "temp_min", "wind"] as const;
export const WEATHER_LABEL = "weather";

/** One row of weather.csv as parsed (every field text). */
export type WeatherDay = Record<"location" | "date" | (typeof WEATHER_FEATURES)[number] | typeof WEATHER_LABEL, string>;

export interface DemoWeatherData {
  csvPath: string;
  /** Seattle days the Job trains on, as CSV (it holds out its own share of them for its metrics). */
  seattleTrainingCsv: string;
  seattleTrainingRows: number;
  /** Seattle days never seen in training: traffic from the distribution the model knows. */
  seattleTraffic: WeatherDay[];
  /** New York days: the same features under another climate (covariate drift). */
  newYorkTraffic: WeatherDay[];
}

/** weather.csv through the package's own location (it exports build/index.js; data/ sits beside build/). */
export function weatherCsvPath(): string {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve("vega-datasets");
  } catch {
    throw new Error("the demo's data comes from the npm package vega-datasets, which is not installed: run `npm ci` in the Ballast checkout");
  }
  const csv = join(dirname(entry), "..", "data", "weather.csv");
  if (!existsSync(csv)) throw new Error(`${csv} is missing from the installed vega-datasets package (reinstall it with \`npm ci\`)`);
  return csv;
}

export function loadWeatherDays(csvPath = weatherCsvPath()): WeatherDay[] {
  return parse(readFileSync(csvPath, "utf8"), { columns: true, skip_empty_lines: true }) as WeatherDay[];
}

export interface WeatherSplit {
  /** Seattle days to train on. */
  seattleTraining: WeatherDay[];
  /** Seattle days never seen in training: traffic from the distribution the model knows. */
  seattleTraffic: WeatherDay[];
  /** New York days: the same features under another climate (covariate drift). */
  newYorkTraffic: WeatherDay[];
}

/** Splits the real data set deterministically (fixed seeds), so every run shows the same numbers. */
export function splitWeather(days: readonly WeatherDay[], seattleTrafficRows: number, newYorkTrafficRows: number): WeatherSplit {
  const seattle = days.filter((d) => d.location === "Seattle");
  const newYork = days.filter((d) => d.location === "New York");
  if (seattle.length < seattleTrafficRows * 2 || newYork.length < newYorkTrafficRows) {
    throw new Error(
      `${seattle.length} Seattle and ${newYork.length} New York rows are too few for ${seattleTrafficRows} + ${newYorkTrafficRows} rows of traffic`,
    );
  }
  const seattleOrder = permutation(seattle.length, seededRandom(7));
  const heldBack = new Set(Array.from(seattleOrder.subarray(0, seattleTrafficRows)));
  return {
    seattleTraining: seattle.filter((_, i) => !heldBack.has(i)),
    seattleTraffic: Array.from(seattleOrder.subarray(0, seattleTrafficRows), (i) => seattle[i]!),
    newYorkTraffic: Array.from(permutation(newYork.length, seededRandom(8)).subarray(0, newYorkTrafficRows), (i) => newYork[i]!),
  };
}

/** weather.csv's fields are numbers, dates and single words: no quoting needed. */
export function weatherCsv(days: readonly WeatherDay[]): string {
  const columns = ["location", "date", ...WEATHER_FEATURES, WEATHER_LABEL] as const;
  return [columns.join(","), ...days.map((d) => columns.map((c) => d[c]).join(","))].join("\n") + "\n";
}

export function demoWeatherData(trafficRows: number, csvPath = weatherCsvPath()): DemoWeatherData {
  let split: WeatherSplit;
  try {
    split = splitWeather(loadWeatherDays(csvPath), trafficRows, trafficRows);
  } catch (err) {
    throw new Error(`${csvPath}: ${(err as Error).message}`, { cause: err });
  }
  return {
    csvPath,
    seattleTrainingCsv: weatherCsv(split.seattleTraining),
    seattleTrainingRows: split.seattleTraining.length,
    seattleTraffic: split.seattleTraffic,
    newYorkTraffic: split.newYorkTraffic,
  };
}
