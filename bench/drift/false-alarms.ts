// bench/drift, false alarms: how often random halves and random windows of real data sets (vega-datasets)
// are called drift under the fixed (Evidently-style) thresholds and under calibrated ones, whether the real
// shifts still are, what calibration costs, and how far hashed categorical profiles are from exact counts.
// Run after `npx tsc -p tsconfig.json`: node bench/drift/false-alarms.ts [splits]   (numbers: docs/monitoring.md)
import { readFileSync } from "node:fs";

type Monitoring = typeof import("../../src/monitoring/index.js");
type Row = Record<string, unknown>;
interface DataSet {
  name: string;
  rows: Row[];
  schema: { name: string; type: "numeric" | "categorical" }[];
}

const m: Monitoring = await import(new URL("../../dist/monitoring/index.js", import.meta.url).href);
const data = (file: string) => new URL(`../../node_modules/vega-datasets/data/${file}`, import.meta.url);
const splits = Number(process.argv[2] ?? 100);

function weather(city: string): Row[] {
  const [header, ...lines] = readFileSync(data("weather.csv"), "utf8").trim().split("\n");
  const keys = header!.split(",");
  return lines.map((l) => Object.fromEntries(l.split(",").map((v, i) => [keys[i]!, v]))).filter((r) => r.location === city);
}
const flights = (JSON.parse(readFileSync(data("flights-10k.json"), "utf8")) as Row[]).filter((r) => String(r.date).startsWith("2001/01"));
const cars = JSON.parse(readFileSync(data("cars.json"), "utf8")) as Row[];
const num = (...names: string[]) => names.map((name) => ({ name, type: "numeric" as const }));
const cat = (...names: string[]) => names.map((name) => ({ name, type: "categorical" as const }));
const sets: DataSet[] = [
  { name: "weather (Seattle)", rows: weather("Seattle"), schema: [...num("precipitation", "temp_max", "temp_min", "wind"), ...cat("weather")] },
  { name: "flights (January 2001)", rows: flights, schema: [...num("delay", "distance"), ...cat("origin", "destination")] },
  {
    name: "cars (all origins)",
    rows: cars,
    schema: [...num("Miles_per_Gallon", "Displacement", "Horsepower", "Weight_in_lbs", "Acceleration"), ...cat("Cylinders")],
  },
];

const mulberry32 = m.seededRandom;
function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const CLI = { exactLimit: 100_000 };
function verdicts(set: DataSet, ref: Row[], cur: Row[], options: { profile: object; windowSizes?: number[] }) {
  const reference = m.DatasetProfile.fromRows(set.schema, ref, options.profile);
  const current = m.DatasetProfile.fromRows(set.schema, cur, options.profile);
  // Halves: as `ballast drift` (a permutation of both files); windows: as the operator (the reference alone, the grid).
  const calibration = options.windowSizes
    ? m.calibrateDrift(reference, { windowSizes: options.windowSizes })
    : m.permutationCalibration(reference, current, { profileOptions: options.profile });
  const fixed = m.compare(reference, current, { thresholdMode: "fixed" });
  const calibrated = m.compare(reference, current, { thresholdMode: "calibrated", calibration });
  return { fixed, calibrated };
}

console.log(`## False alarms (${splits} random splits each)\n`);
console.log("| data set | rows ref / cur | test | fixed: dataset drift | fixed: feature alarms | calibrated: dataset drift | calibrated: feature alarms |");
console.log("|---|---|---|---|---|---|---|");
for (const set of sets) {
  for (const kind of ["halves", "windows of 200"] as const) {
    const random = mulberry32(7);
    let fixedDrift = 0,
      fixedAlarms = 0,
      calDrift = 0,
      calAlarms = 0,
      sizes = "";
    for (let s = 0; s < splits; s++) {
      const rows = shuffled(set.rows, random);
      const half = Math.floor(rows.length / 2);
      const ref = rows.slice(0, half);
      const cur = kind === "halves" ? rows.slice(half) : rows.slice(half, half + 200);
      sizes = `${ref.length} / ${cur.length}`;
      const v =
        kind === "halves" ? verdicts(set, ref, cur, { profile: CLI }) : verdicts(set, ref, cur, { profile: {}, windowSizes: [...m.CALIBRATION_WINDOW_SIZES] });
      fixedDrift += Number(v.fixed.drift);
      calDrift += Number(v.calibrated.drift);
      fixedAlarms += v.fixed.driftedFeatures;
      calAlarms += v.calibrated.driftedFeatures;
    }
    const features = set.schema.length * splits;
    console.log(
      `| ${set.name} | ${sizes} | ${kind} | ${fixedDrift}/${splits} | ${fixedAlarms}/${features} | ${calDrift}/${splits} | ${calAlarms}/${features} |`,
    );
  }
}

console.log("\n## Real shifts\n");
console.log("| shift | fixed | calibrated (drifted features) |");
console.log("|---|---|---|");
const usa = cars.filter((r) => r.Origin === "USA");
const japan = cars.filter((r) => r.Origin === "Japan");
for (const [name, set, ref, cur] of [
  ["weather Seattle → New York", sets[0]!, weather("Seattle"), weather("New York")],
  ["cars USA → Japan", sets[2]!, usa, japan],
] as const) {
  const v = verdicts(set, ref, cur, { profile: CLI });
  const list = (r: typeof v.fixed) =>
    `${r.drift ? "drift" : "no drift"} (${r.features
      .filter((f) => f.drift)
      .map((f) => f.name)
      .join(", ")})`;
  console.log(`| ${name} | ${list(v.fixed)} | ${list(v.calibrated)} |`);
}

console.log("\n## Calibration cost (B = 200, level 0.99, the operator's grid)\n");
console.log("| reference | features | window sizes calibrated | seconds |");
console.log("|---|---|---|---|");
// A large reference (numeric features in KLL sketches): the replicate cap bounds the cost.
const flights200k: DataSet = {
  name: "flights-200k (delay, distance)",
  rows: JSON.parse(readFileSync(data("flights-200k.json"), "utf8")) as Row[],
  schema: num("delay", "distance"),
};
for (const set of [...sets, flights200k]) {
  const reference = m.DatasetProfile.fromRows(set.schema, set.rows);
  const t = performance.now();
  const calibration = m.calibrateDrift(reference);
  const sizes = Object.values(calibration.toJSON().features)[0]!.windowSizes.join(", ");
  console.log(`| ${set.name}, ${set.rows.length} rows | ${set.schema.length} | ${sizes} | ${((performance.now() - t) / 1000).toFixed(2)} |`);
}

console.log("\n## Hashed categories vs exact counts (flights January halves, JS distance and PSI)\n");
console.log("| column | distinct | exact JS (mean) | first-100 + other JS (mean, max error) | hashed JS (mean, max error) | hashed PSI (max error) |");
console.log("|---|---|---|---|---|---|");
function exactCounts(rows: Row[], column: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(String(r[column]), (counts.get(String(r[column])) ?? 0) + 1);
  return counts;
}
// The profiles before hash buckets: the first 100 values seen by name, the rest in one catch-all.
function firstHundred(rows: Row[], column: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of rows) {
    const v = String(r[column]);
    const key = counts.has(v) || counts.size < 100 ? v : "__other__";
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}
function aligned(a: Map<string, number>, b: Map<string, number>): [number[], number[]] {
  const keys = [...new Set([...a.keys(), ...b.keys()])];
  return [keys.map((k) => a.get(k) ?? 0), keys.map((k) => b.get(k) ?? 0)];
}
for (const column of ["origin", "destination"]) {
  const random = mulberry32(11);
  const errors = { old: [] as number[], hashed: [] as number[], psi: [] as number[], exact: [] as number[], oldJs: [] as number[], hashedJs: [] as number[] };
  for (let s = 0; s < splits; s++) {
    const rows = shuffled(flights, random);
    const [a, b] = [rows.slice(0, rows.length / 2), rows.slice(rows.length / 2)];
    const exact = m.jensenShannonDistance(...aligned(exactCounts(a, column), exactCounts(b, column)), 2);
    const exactPsi = m.populationStabilityIndex(...aligned(exactCounts(a, column), exactCounts(b, column)));
    const old = m.jensenShannonDistance(...aligned(firstHundred(a, column), firstHundred(b, column)), 2);
    const schema = [{ name: column, type: "categorical" as const }];
    const pa = m.DatasetProfile.fromRows(schema, a).features.get(column)!;
    const pb = m.DatasetProfile.fromRows(schema, b).features.get(column)!;
    const hashed = m.featureStatistic("jensenshannon", pa, pb)!;
    const hashedPsi = m.featureStatistic("psi", pa, pb)!;
    errors.exact.push(exact);
    errors.oldJs.push(old);
    errors.hashedJs.push(hashed);
    errors.old.push(Math.abs(old - exact));
    errors.hashed.push(Math.abs(hashed - exact));
    errors.psi.push(Math.abs(hashedPsi - exactPsi));
  }
  const mean = (x: number[]) => (x.reduce((s, v) => s + v, 0) / x.length).toFixed(4);
  const max = (x: number[]) => Math.max(...x).toFixed(4);
  const distinct = new Set(flights.map((r) => r[column])).size;
  console.log(
    `| ${column} | ${distinct} | ${mean(errors.exact)} | ${mean(errors.oldJs)}, ${max(errors.old)} | ${mean(errors.hashedJs)}, ${max(errors.hashed)} | ${max(errors.psi)} |`,
  );
}
