// Multivariate drift's reference against scikit-learn (test/oracle/generate.py: frequency encoding, StandardScaler,
// PCA(n_components=0.65); versions pinned in test/oracle/requirements.txt), then on real data: random windows of the
// training distribution stay inside the band, and a window whose columns keep every marginal but lose their
// correlation leaves it while per-feature drift sees nothing.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DatasetProfile, calibrateDrift, compare } from "../../../src/monitoring/index.js";
import { PcaReconstruction, ReconstructionErrorSum, multivariateDrift, type PcaReferenceJSON } from "../../../src/monitoring/multivariate-drift.js";
import { fitPcaReference } from "../../../src/training/pca-reference.js";
import type { ReferenceColumn } from "../../../src/training/reference.js";
import { carsSet, flightsSet, seeded, shuffled, weatherSet, type DataSet, type Row } from "../monitoring/real-data.js";

interface PcaCase {
  name: string;
  types: ("numeric" | "categorical")[];
  columns: (number | string | null)[][];
  newColumns: (number | string | null)[][];
  components: number;
  explainedVariance: number;
  center: number[];
  scale: number[];
  errors: number[];
  newErrors: number[];
}

const cases = (JSON.parse(readFileSync(new URL("../../oracle/fixtures/pca_reconstruction.json", import.meta.url), "utf8")) as { cases: PcaCase[] }).cases;

const rowsOf = (columns: unknown[][]): unknown[][] => columns[0]!.map((_, r) => columns.map((c) => c[r]));

describe("PCA reconstruction error (scikit-learn)", () => {
  it.each(cases.map((c) => [c.name, c] as const))("%s: same components, scaler and per-row errors within 1e-6", (_name, c) => {
    const reference = fitPcaReference(c.columns.map((values, j) => ({ name: `f${j}`, type: c.types[j]!, values })))!;
    expect(reference.components).toHaveLength(c.components);
    expect(reference.explainedVariance).toBeCloseTo(c.explainedVariance, 9);
    reference.center.forEach((v, j) => expect(v).toBeCloseTo(c.center[j]!, 9));
    reference.scale.forEach((v, j) => expect(v).toBeCloseTo(c.scale[j]!, 9));
    const pca = new PcaReconstruction(reference);
    // The sidecar's path: raw values of a row, encoded, scaled, projected and reconstructed.
    const errors = rowsOf(c.columns).map((row) => pca.errorOf(row));
    const newErrors = rowsOf(c.newColumns).map((row) => pca.errorOf(row));
    errors.forEach((e, r) => expect(Math.abs(e - c.errors[r]!), `reference row ${r}`).toBeLessThan(1e-6));
    newErrors.forEach((e, r) => expect(Math.abs(e - c.newErrors[r]!), `new row ${r}`).toBeLessThan(1e-6));
    // The band is centred on errors of rows each half's PCA did not see: above the in-sample mean.
    expect(reference.band.mean).toBeGreaterThan(c.errors.reduce((s, e) => s + e, 0) / c.errors.length);
  });

  it("stays bounded in metadata.json: components for 65% of the variance, at most 100 categories per feature", () => {
    const random = seeded(11);
    const rows = 2000;
    const base = Array.from({ length: rows }, () => random());
    const columns: ReferenceColumn[] = [
      ...Array.from({ length: 30 }, (_, j) => ({ name: `x${j}`, type: "numeric" as const, values: base.map((b) => b * (j % 3) + random()) })),
      { name: "id_like", type: "categorical", values: Array.from({ length: rows }, (_, r) => `c${r % 700}`) },
    ];
    const reference = fitPcaReference(columns)!;
    expect(reference.explainedVariance).toBeGreaterThan(0.65);
    expect(reference.components.length).toBeLessThan(31);
    const categorical = reference.features.find((f) => f.type === "categorical")!;
    expect(Object.keys(categorical.type === "categorical" ? categorical.frequencies : {})).toHaveLength(100);
    expect(JSON.stringify(reference).length).toBeLessThan(64 * 1024);
  });

  it("is not fitted when there is nothing to correlate (one feature) or too few rows", () => {
    expect(fitPcaReference([{ name: "a", type: "numeric", values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20] }])).toBeUndefined();
    expect(fitPcaReference([1, 2].map((j) => ({ name: `a${j}`, type: "numeric" as const, values: [1, 2, 3] })))).toBeUndefined();
  });
});

const WINDOW = 300;

function columnsOf(set: DataSet, rows: readonly Row[]): ReferenceColumn[] {
  return set.schema.map((f) => ({ name: f.name, type: f.type, values: rows.map((r) => r[f.name]) }));
}

/** Reference: a random half; windows: disjoint slices of the other half, as live traffic from the same distribution. */
function split(set: DataSet, seed: number): { reference: PcaReferenceJSON; pca: PcaReconstruction; rest: Row[] } {
  const rows = shuffled(set.rows, seeded(seed));
  const half = Math.floor(rows.length / 2);
  const reference = fitPcaReference(columnsOf(set, rows.slice(0, half)), { windowSizes: [100, WINDOW] })!;
  return { reference, pca: new PcaReconstruction(reference), rest: rows.slice(half) };
}

function windowDrift(set: DataSet, pca: PcaReconstruction, reference: PcaReferenceJSON, rows: readonly Row[]) {
  const sum = new ReconstructionErrorSum(reference.band);
  for (const r of rows) sum.add(pca.errorOf(set.schema.map((f) => r[f.name])));
  return multivariateDrift(sum.toJSON())!;
}

describe("multivariate drift on real data", () => {
  it.each([weatherSet, flightsSet, carsSet].map((s) => [s.name, s] as const))(
    "%s: random windows of unseen rows from the training distribution stay inside the band",
    (_name, set) => {
      let windows = 0;
      for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
        const { reference, pca, rest } = split(set, seed);
        const size = Math.min(WINDOW, Math.floor(rest.length / 2));
        for (let at = 0; at + size <= rest.length; at += size) {
          const result = windowDrift(set, pca, reference, rest.slice(at, at + size));
          expect(result.drift, `seed ${seed} window at ${at}: ${result.reconstructionError} outside [${result.lower}, ${result.upper}]`).toBe(false);
          windows++;
        }
      }
      expect(windows).toBeGreaterThanOrEqual(8);
    },
  );

  it("Seattle weather: shuffling temp_min against the other columns keeps every marginal, so per-feature drift is silent, but the joint leaves the band", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const { reference, pca, rest } = split(weatherSet, seed);
      const window = rest.slice(0, WINDOW);
      const mins = shuffled(
        window.map((r) => r.temp_min),
        seeded(seed + 100),
      );
      const decorrelated = window.map((r, i) => ({ ...r, temp_min: mins[i] }));

      const half = shuffled(weatherSet.rows, seeded(seed)).slice(0, Math.floor(weatherSet.rows.length / 2));
      const profile = DatasetProfile.fromRows(weatherSet.schema, half);
      const perFeature = compare(profile, DatasetProfile.fromRows(weatherSet.schema, decorrelated), {
        thresholdMode: "calibrated",
        calibration: calibrateDrift(profile),
      });
      expect(perFeature.driftedFeatures, `seed ${seed}: ${perFeature.features.filter((f) => f.drift).map((f) => f.reason)}`).toBe(0);

      const calm = windowDrift(weatherSet, pca, reference, window);
      const broken = windowDrift(weatherSet, pca, reference, decorrelated);
      expect(calm.drift).toBe(false);
      expect(broken.drift, `seed ${seed}: ${broken.reconstructionError} vs band [${broken.lower}, ${broken.upper}]`).toBe(true);
      expect(broken.reconstructionError).toBeGreaterThan(broken.upper);
    }
  });
});
