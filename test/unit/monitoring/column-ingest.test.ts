// The column fast paths (bulk numeric and categorical ingest, radix-sorted KLL compactions, worker threads)
// give the profiles the one-value-at-a-time paths give, on real data.
import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CategoricalProfile, DatasetProfile, KllSketch, NumericProfile, compare, decodeFloat32, type FeatureSchema } from "../../../src/monitoring/index.js";
import { seeded } from "./real-data.js";

type Row = Record<string, unknown>;
const flights = JSON.parse(readFileSync(new URL("../../../node_modules/vega-datasets/data/flights-10k.json", import.meta.url), "utf8")) as Row[];
const flightSchema: FeatureSchema[] = [
  { name: "delay", type: "numeric" },
  { name: "distance", type: "numeric" },
  { name: "origin", type: "categorical" },
  { name: "destination", type: "categorical" },
];

function numericColumn(rows: Row[], name: string): Float64Array {
  return Float64Array.from(rows, (r) => Number(r[name]));
}

function columnsOf(rows: Row[]): Record<string, ArrayLike<unknown>> {
  return {
    delay: numericColumn(rows, "delay"),
    distance: numericColumn(rows, "distance"),
    origin: rows.map((r) => r.origin),
    destination: rows.map((r) => r.destination),
  };
}

// Every moment but mean and m2 must match exactly; those two are summed per block, so they may differ in the last bits.
function expectSameNumeric(bulk: NumericProfile, single: NumericProfile): void {
  const { mean, m2, ...rest } = bulk.toJSON();
  const { mean: mean1, m2: m21, ...rest1 } = single.toJSON();
  expect(rest).toEqual(rest1);
  expect(Math.abs(mean - mean1)).toBeLessThanOrEqual(1e-12 * (Math.abs(mean1) + single.std));
  expect(Math.abs(m2 / m21 - 1)).toBeLessThanOrEqual(1e-12);
}

describe("NumericProfile.addNumbers", () => {
  it("builds the sketch adding one value at a time builds, with non-finite and out-of-float32 values among real ones", () => {
    const delays = numericColumn(flights, "delay");
    // Hostile cells at places that fall in different level-0 batches, before and after the switch to the sketch.
    for (const [at, value] of [
      [3, Number.NaN],
      [500, Number.POSITIVE_INFINITY],
      [1500, -0],
      [2500, 5e39],
      [4000, 7e38],
      [7000, Number.NEGATIVE_INFINITY],
      [9000, 1e-42],
    ] as const)
      delays[at] = value;
    for (const exactLimit of [0, 1000]) {
      const single = new NumericProfile({ exactLimit });
      for (const v of delays) single.addNumber(v);
      const bulk = new NumericProfile({ exactLimit });
      bulk.addNumbers(delays.subarray(0, 4321));
      bulk.addNumbers(delays.subarray(4321));
      expect(bulk.mode).toBe("sketch");
      expect(bulk.nonFinite).toBe(3);
      expectSameNumeric(bulk, single);
    }
  });

  it("keeps exact values while under the exact limit", () => {
    const distances = numericColumn(flights.slice(0, 800), "distance");
    const bulk = new NumericProfile();
    bulk.addNumbers(distances);
    expect(bulk.mode).toBe("exact");
    expect(bulk.exactValues()).toEqual(distances);
  });
});

describe("KLL compactions (radix-sorted level 0)", () => {
  it("keeps every level sorted and the quantiles within the bound on values of both signs, zeros and subnormals", () => {
    const random = seeded(7);
    const specials = [0, -0, 1e-40, -1e-40, 3.4e38, -3.4e38, 1, -1];
    const values = Float64Array.from({ length: 50_000 }, (_, i) =>
      i % 97 === 0 ? specials[i % specials.length]! : (random() - 0.4) * 10 ** Math.floor(random() * 8),
    );
    const sketch = new KllSketch(64);
    sketch.updateAll(values);
    const json = sketch.toJSON();
    const items = decodeFloat32(json.items, "items");
    let at = json.levels[0]!;
    for (const size of json.levels.slice(1)) {
      const level = items.subarray(at, at + size);
      for (let i = 1; i < level.length; i++) expect(level[i]!).toBeGreaterThanOrEqual(level[i - 1]!);
      at += size;
    }
    const sorted = Float64Array.from(values, Math.fround).sort();
    const { values: points, cumulative, total } = sketch.weightedPoints();
    // Rank of the sketch's median against the true ranks.
    const medianIndex = cumulative.findIndex((c) => c >= total / 2);
    const trueRank = sorted.findIndex((v) => v >= points[medianIndex]!) / sorted.length;
    expect(Math.abs(trueRank - 0.5)).toBeLessThan(0.1);
  });
});

describe("CategoricalProfile.addAll", () => {
  it("counts like add() per cell: named values, hash buckets beyond maxCategories, missing and invalid cells", () => {
    const cells: unknown[] = flights.map((r) => r.origin);
    cells.splice(10, 0, null, "", "  ", undefined, 42, true, { not: "a category" }, "42", "x".repeat(300), "x".repeat(300) + "y");
    for (const maxCategories of [5, 100]) {
      const single = new CategoricalProfile({ maxCategories });
      for (const cell of cells) single.add(cell);
      const bulk = new CategoricalProfile({ maxCategories });
      bulk.addAll(cells);
      expect(bulk.toJSON()).toEqual(single.toJSON());
      if (maxCategories === 5) expect(bulk.hashed.size).toBeGreaterThan(0);
    }
  });
});

describe("DatasetProfile.fromColumns (bulk) against fromRows", () => {
  it("reports the same drift on real data (flights: first half vs second half)", () => {
    const half = flights.length / 2;
    const [a, b] = [flights.slice(0, half), flights.slice(half)];
    const byRows = compare(DatasetProfile.fromRows(flightSchema, a, { exactLimit: 0 }), DatasetProfile.fromRows(flightSchema, b, { exactLimit: 0 }));
    const byColumns = compare(
      DatasetProfile.fromColumns(flightSchema, columnsOf(a), { exactLimit: 0 }),
      DatasetProfile.fromColumns(flightSchema, columnsOf(b), { exactLimit: 0 }),
    );
    expect(byColumns.features.map((f) => [f.name, f.drift])).toEqual(byRows.features.map((f) => [f.name, f.drift]));
    byColumns.features.forEach((f, i) => expect(f.statistic!).toBeCloseTo(byRows.features[i]!.statistic!, 9));
  });
});

// Worker threads run compiled JavaScript: this part imports the engine from dist/ (npx tsc first, as for the CLI tests).
const compiled = new URL("../../../dist/monitoring/index.js", import.meta.url);

describe("profileColumnsInParallel (dist/)", () => {
  it("gives the one-thread profiles, bit for bit, on real data", async () => {
    expect(existsSync(compiled), "dist/ is not built: run npx tsc").toBe(true);
    const m = (await import(compiled.href)) as typeof import("../../../src/monitoring/index.js");
    const columns = columnsOf(flights);
    // More numeric columns than threads: the same columns under other names.
    const schema: FeatureSchema[] = [...flightSchema, { name: "delay2", type: "numeric" }, { name: "distance2", type: "numeric" }];
    columns.delay2 = (columns.delay as Float64Array).map((v) => v * 2 - 1);
    columns.distance2 = (columns.distance as Float64Array).map((v) => Math.sqrt(v));
    for (const options of [{ exactLimit: 0 }, { exactLimit: Infinity }, {}]) {
      const serial = m.DatasetProfile.fromColumns(schema, columns, options);
      const parallel = await m.profileColumnsInParallel(schema, columns, { ...options, threads: 3 });
      expect(parallel.toJSON()).toEqual(serial.toJSON());
    }
    // The caller's columns are left as they were (each worker gets a copy).
    expect((columns.delay as Float64Array).length).toBe(flights.length);
    await expect(m.profileColumnsInParallel(schema, { ...columns, delay: new Float64Array(3) }, { threads: 2 })).rejects.toThrow(/different lengths/);
    await expect(m.profileColumnsInParallel(schema, columns, { threads: 2.5 })).rejects.toThrow(/threads must be a whole number ≥ 1, got 2.5/);
  });
});
