// Drift that does not cry wolf: random halves and random windows of real data sets are not drift under
// calibrated thresholds (they are under Evidently's fixed ones for high-cardinality columns), and real shifts
// still are. Both calibrations are tested as they are used: a permutation of both files (`ballast drift`) and
// subsampling of the reference alone over the window-size grid (what `ballast train` stores for the operator).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  CALIBRATION_WINDOW_SIZES,
  DatasetProfile,
  DriftCalibration,
  MAX_PERMUTATION_ROWS,
  ProfileFormatError,
  calibrateDrift,
  compare,
  permutationCalibration,
  type DriftReport,
} from "../../../src/monitoring/index.js";
import { carsSet, flightsSet, seeded, shuffled, weather, weatherSet, type DataSet, type Row } from "./real-data.js";

const SPLITS = 8;
const CLI_PROFILES = { exactLimit: 100_000 };

function halves(set: DataSet, random: () => number): { fixed: DriftReport; calibrated: DriftReport } {
  const rows = shuffled(set.rows, random);
  const half = Math.floor(rows.length / 2);
  const reference = DatasetProfile.fromRows(set.schema, rows.slice(0, half), CLI_PROFILES);
  const current = DatasetProfile.fromRows(set.schema, rows.slice(half), CLI_PROFILES);
  const calibration = permutationCalibration(reference, current, { profileOptions: CLI_PROFILES });
  return {
    fixed: compare(reference, current, { thresholdMode: "fixed" }),
    calibrated: compare(reference, current, { thresholdMode: "calibrated", calibration }),
  };
}

/** The operator's path: the reference is calibrated alone, on the grid; the window is another part of the data. */
function window(set: DataSet, rows: number, random: () => number): { fixed: DriftReport; calibrated: DriftReport } {
  const shuffledRows = shuffled(set.rows, random);
  const half = Math.floor(shuffledRows.length / 2);
  const reference = DatasetProfile.fromRows(set.schema, shuffledRows.slice(0, half));
  const current = DatasetProfile.fromRows(set.schema, shuffledRows.slice(half, half + rows));
  const calibration = calibrateDrift(reference);
  return {
    fixed: compare(reference, current, { thresholdMode: "fixed" }),
    calibrated: compare(reference, current, { thresholdMode: "calibrated", calibration }),
  };
}

/**
 * Dataset-drift verdicts over seeded random splits. At the 99% level a feature alarms about once in 100
 * splits by chance; features that move together (cars: weight, displacement, cylinders, mpg) can then carry
 * the drift share with them, so a rare dataset alarm is the test's level, not a defect: at most 1 in SPLITS.
 */
function alarms(split: (random: () => number) => { fixed: DriftReport; calibrated: DriftReport }, seed: number) {
  const random = seeded(seed);
  const out = { fixed: 0, calibrated: 0, reasons: [] as string[] };
  for (let s = 0; s < SPLITS; s++) {
    const { fixed, calibrated } = split(random);
    expect(calibrated.features.every((f) => f.thresholdMode === "calibrated")).toBe(true);
    out.fixed += Number(fixed.drift);
    out.calibrated += Number(calibrated.drift);
    if (calibrated.drift) out.reasons.push(calibrated.features.map((f) => f.reason).join("; "));
  }
  return out;
}

describe("random halves and windows of the same data are not drift under calibrated thresholds", () => {
  it(`January flights (171–179 airports): no random half and no 250-row window of ${SPLITS} drifts; every one does under the fixed 0.1`, () => {
    for (const result of [alarms((r) => halves(flightsSet, r), 1), alarms((r) => window(flightsSet, 250, r), 2)]) {
      expect(result.calibrated, result.reasons.join("\n")).toBe(0);
      expect(result.fixed).toBe(SPLITS);
    }
  });

  it.each([weatherSet, carsSet])(`$name: at most 1 of ${SPLITS} random halves and of ${SPLITS} random 250-row windows drifts`, (set) => {
    for (const result of [alarms((r) => halves(set, r), 1), alarms((r) => window(set, 250, r), 2)]) {
      expect(result.calibrated, result.reasons.join("\n")).toBeLessThanOrEqual(1);
    }
  });

  it("says why a flights half is not drift: Jensen–Shannon of the airports is over 0.1 but under its no-drift quantile", () => {
    const random = seeded(1);
    for (let s = 0; s < 3; s++) {
      const { calibrated } = halves(flightsSet, random);
      const origin = calibrated.features.find((f) => f.name === "origin")!;
      expect(origin.statistic).toBeGreaterThan(0.1);
      expect(origin.reason).toMatch(/^origin: jensenshannon 0\.\d+ ≤ 0\.\d+ \(no-drift 99% quantile at \d+ rows\)$/);
    }
  });
});

describe("real shifts are still drift under calibrated thresholds", () => {
  function shift(set: DataSet, reference: Row[], current: Row[]) {
    const ref = DatasetProfile.fromRows(set.schema, reference, CLI_PROFILES);
    const cur = DatasetProfile.fromRows(set.schema, current, CLI_PROFILES);
    const permuted = compare(ref, cur, { thresholdMode: "calibrated", calibration: permutationCalibration(ref, cur, { profileOptions: CLI_PROFILES }) });
    const operator = compare(DatasetProfile.fromRows(set.schema, reference), DatasetProfile.fromRows(set.schema, current.slice(0, 300)), {
      thresholdMode: "calibrated",
      calibration: calibrateDrift(DatasetProfile.fromRows(set.schema, reference)),
    });
    return { permuted, operator };
  }

  it("Seattle → New York weather", () => {
    const { permuted, operator } = shift(weatherSet, weather("Seattle"), weather("New York"));
    expect(permuted.drift).toBe(true);
    expect(permuted.driftedFeatures).toBe(5);
    expect(operator.drift).toBe(true);
  });

  it("USA → Japan cars", () => {
    const usa = carsSet.rows.filter((r) => r.Origin === "USA");
    const japan = carsSet.rows.filter((r) => r.Origin === "Japan");
    const { permuted, operator } = shift(carsSet, usa, japan);
    expect(permuted.drift).toBe(true);
    expect(permuted.features.filter((f) => f.drift).map((f) => f.name)).toEqual(
      expect.arrayContaining(["Miles_per_Gallon", "Displacement", "Horsepower", "Weight_in_lbs"]),
    );
    expect(operator.drift).toBe(true);
  });
});

describe("calibration", () => {
  const reference = DatasetProfile.fromRows(weatherSet.schema, weatherSet.rows);

  it("is deterministic (seeded) and serializes round trip", () => {
    const a = calibrateDrift(reference, { resamples: 40 });
    const b = calibrateDrift(reference, { resamples: 40 });
    expect(a.toJSON()).toEqual(b.toJSON());
    expect(DriftCalibration.fromJSON(JSON.parse(JSON.stringify(a))).toJSON()).toEqual(a.toJSON());
    expect(calibrateDrift(reference, { resamples: 40, seed: 7 }).toJSON()).not.toEqual(a.toJSON());
  });

  it("covers window sizes up to half the reference, and its quantile shrinks as windows grow", () => {
    const calibration = calibrateDrift(reference, { resamples: 60 });
    const temp = calibration.toJSON().features.temp_max!;
    // 1461 rows: the grid up to a quarter (100, 300), then half (730), so sizes stay at least 2× apart.
    expect(temp.windowSizes).toEqual([...CALIBRATION_WINDOW_SIZES.filter((n) => n <= 730 / 2), 730]);
    expect(temp.windowSizes).toEqual([100, 300, 730]);
    const at = (rows: number) => calibration.threshold("temp_max", "wasserstein", rows)!;
    expect(at(100)).toBeGreaterThan(at(300));
    expect(at(200)).toBeLessThan(at(100));
    expect(at(200)).toBeGreaterThan(at(300));
    expect(at(300)).toBeGreaterThan(at(730));
    // Beyond the largest size the reference's own noise remains: never below half the last quantile.
    expect(at(1_000_000)).toBeGreaterThanOrEqual((at(730) / 2) * (1 - 1e-12));
    // A reference too small for the grid: a sixth and a half of its rows.
    const cars = calibrateDrift(DatasetProfile.fromRows(carsSet.schema, carsSet.rows.slice(0, 203)), { resamples: 20 });
    expect(cars.toJSON().features.Weight_in_lbs!.windowSizes).toEqual([33, 101]);
    expect(at(1_000_000)).toBeLessThan(at(730));
  });

  it("leaves a feature with too few rows uncalibrated, and compare falls back to the fixed threshold saying so", () => {
    const tiny = DatasetProfile.fromRows(
      [{ name: "x", type: "numeric" }],
      Array.from({ length: 10 }, (_, i) => ({ x: i })),
    );
    const calibration = calibrateDrift(tiny);
    expect(calibration.toJSON().features).toEqual({});
    const [f] = compare(tiny, tiny, { thresholdMode: "calibrated", calibration }).features;
    expect(f).toMatchObject({ thresholdMode: "fixed", threshold: 0.05 });
    expect(f!.reason).toContain("(fixed threshold: no calibration for this feature and method)");
  });

  it.each([
    [{ level: 2, resamples: 1, seed: 1, features: {} }, /calibration\.level: expected a number in \(0, 1\)/],
    [
      { level: 0.99, resamples: 1, seed: 1, features: { x: { windowSizes: [300, 100], quantiles: {} } } },
      /calibration\.features\.x\.windowSizes: expected increasing/,
    ],
    [
      { level: 0.99, resamples: 1, seed: 1, features: { x: { windowSizes: [100], quantiles: { psi: [0.1, 0.2] } } } },
      /calibration\.features\.x\.quantiles\.psi: expected 1 finite/,
    ],
  ])("rejects a malformed stored calibration naming the field: %j", (json, message) => {
    expect(() => DriftCalibration.fromJSON(json)).toThrow(ProfileFormatError);
    expect(() => DriftCalibration.fromJSON(json)).toThrow(message);
  });
});

describe("ballast drift's permutation on large files", () => {
  it("permutes at most MAX_PERMUTATION_ROWS per feature, both sizes scaled alike, and judges the feature by that quantile", () => {
    const rows = JSON.parse(readFileSync(new URL("../../../node_modules/vega-datasets/data/flights-200k.json", import.meta.url), "utf8")) as Row[];
    const schema = [{ name: "delay", type: "numeric" as const }];
    const reference = DatasetProfile.fromRows(schema, rows);
    const current = DatasetProfile.fromRows(schema, rows.slice(0, 100_000));
    const calibration = permutationCalibration(reference, current, { resamples: 5 });
    // 200 000 + 100 000 rows → two thirds of each.
    expect(MAX_PERMUTATION_ROWS).toBe(200_000);
    expect(calibration.toJSON().features.delay!.windowSizes).toEqual([66_666]);
    const [delay] = compare(reference, current, { thresholdMode: "calibrated", calibration }).features;
    expect(delay).toMatchObject({ thresholdMode: "calibrated", status: "evaluated" });
  });
});

describe("a correction applies to fixed thresholds only", () => {
  it("calibrated p-value features keep their quantile verdict under bonferroni", () => {
    const usa = DatasetProfile.fromRows(carsSet.schema, carsSet.rows.filter((r) => r.Origin === "USA").slice(0, 200));
    const japan = DatasetProfile.fromRows(
      carsSet.schema,
      carsSet.rows.filter((r) => r.Origin === "Japan"),
    );
    const calibration = calibrateDrift(usa, { resamples: 60 });
    const features = carsSet.schema.filter((f) => f.type === "numeric").map((f) => f.name);
    const report = compare(usa, japan, { method: "ks", features, thresholdMode: "calibrated", calibration, correction: "bonferroni" });
    expect(report.features).toHaveLength(5);
    for (const f of report.features) {
      expect(f.thresholdMode).toBe("calibrated");
      expect(f.adjustedPValue).toBe(f.pValue);
      expect(f.drift).toBe(f.statistic! > f.threshold);
    }
  });
});
