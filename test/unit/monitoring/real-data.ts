// Real data sets from vega-datasets, split at random with a seeded generator, for the drift tests.
import { readFileSync } from "node:fs";
import type { FeatureSchema } from "../../../src/monitoring/index.js";

export type Row = Record<string, unknown>;
export interface DataSet {
  name: string;
  rows: Row[];
  schema: FeatureSchema[];
}

const file = (name: string) => new URL(`../../../node_modules/vega-datasets/data/${name}`, import.meta.url);
const numeric = (...names: string[]): FeatureSchema[] => names.map((name) => ({ name, type: "numeric" }));
const categorical = (...names: string[]): FeatureSchema[] => names.map((name) => ({ name, type: "categorical" }));

export function weather(city: "Seattle" | "New York"): Row[] {
  const [header, ...lines] = readFileSync(file("weather.csv"), "utf8").trim().split("\n");
  const keys = header!.split(",");
  return lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [keys[i]!, v]))).filter((r) => r.location === city);
}
export const januaryFlights = (JSON.parse(readFileSync(file("flights-10k.json"), "utf8")) as Row[]).filter((r) => String(r.date).startsWith("2001/01"));
export const cars = JSON.parse(readFileSync(file("cars.json"), "utf8")) as Row[];

export const weatherSet: DataSet = {
  name: "Seattle weather",
  rows: weather("Seattle"),
  schema: [...numeric("precipitation", "temp_max", "temp_min", "wind"), ...categorical("weather")],
};
export const flightsSet: DataSet = {
  name: "January 2001 flights",
  rows: januaryFlights,
  schema: [...numeric("delay", "distance"), ...categorical("origin", "destination")],
};
export const carsSet: DataSet = {
  name: "cars",
  rows: cars,
  schema: [...numeric("Miles_per_Gallon", "Displacement", "Horsepower", "Weight_in_lbs", "Acceleration"), ...categorical("Cylinders")],
};

/** A seeded uniform generator (Park–Miller), so every run splits the same way. */
export function seeded(seed: number): () => number {
  let state = seed;
  return () => (state = (state * 48271) % 2147483647) / 2147483647;
}

export function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
