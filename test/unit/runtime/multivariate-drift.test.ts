// Multivariate drift through the real server and sidecar: a weather model trained on Seattle stores its PCA
// reference; the sidecar reports each window's summed reconstruction error with the band. A calm Seattle window
// stays inside it; the same days with temp_min shuffled among them (every marginal unchanged, the temperatures no
// longer move together) leave it, while the sidecar's per-feature drift sees nothing. Replicas merge exactly.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PcaReconstruction, multivariateDrift } from "../../../src/monitoring/multivariate-drift.js";
import { mergeSummaries, type SidecarSummary } from "../../../src/monitoring/summary.js";
import { parseSidecarSummary } from "../../../src/monitoring/summary-schema.js";
import { postJson, startWindowedModel, stopAll, type LocalProcess } from "./local-processes.js";
import { WEATHER_FEATURES, inferBody, weatherFixture, type WeatherFixture, type WeatherRow } from "./weather-fixture.js";

const WINDOW_ROWS = 300;
const ROWS_PER_REQUEST = 20;

let fx: WeatherFixture;
let server: LocalProcess;
let sidecar: LocalProcess;

async function send(prefix: string, rows: readonly WeatherRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += ROWS_PER_REQUEST) {
    const res = await postJson(`${sidecar.url}/v2/models/weather/infer`, inferBody(rows.slice(i, i + ROWS_PER_REQUEST), `${prefix}-${i}`));
    expect(res.status).toBe(200);
  }
}

async function summary(): Promise<SidecarSummary> {
  return parseSidecarSummary(await (await fetch(`${sidecar.monitoringUrl}/v1/monitoring/summary`)).json());
}

/** The rows with temp_min permuted among them by a fixed rotation-and-stride (deterministic, every value kept). */
function decorrelated(rows: readonly WeatherRow[]): WeatherRow[] {
  const mins = rows.map((r) => r.temp_min);
  return rows.map((r, i) => ({ ...r, temp_min: mins[(i * 7 + 131) % rows.length]! }));
}

beforeAll(async () => {
  fx = await weatherFixture({ holdoutRows: WINDOW_ROWS });
  ({ server, sidecar } = await startWindowedModel(`file://${fx.storeDir}`, path.join(fx.dir, "sidecar-log"), WINDOW_ROWS));
}, 180_000);

afterAll(async () => {
  await stopAll([sidecar, server]);
  fx?.cleanup();
});

describe("multivariate drift in the sidecar (Seattle weather)", () => {
  it("ballast train stores a bounded PCA reference: every feature, components for at least 65% of the variance, a band", () => {
    const m = fx.trained.metadata.multivariateReference!;
    expect(m.features.map((f) => f.name)).toEqual([...WEATHER_FEATURES]);
    expect(m.explainedVariance).toBeGreaterThan(0.65);
    expect(m.components.length).toBeLessThan(WEATHER_FEATURES.length);
    expect(m.rows).toBe(fx.trained.metadata.dataWindow.trainRows);
    expect(m.band.mean).toBeGreaterThan(0);
  });

  it("a calm window stays in the band; the decorrelated one leaves it while no single feature drifts", async () => {
    // 7 is coprime to 300: the stride permutes every row's temp_min.
    const calm = fx.seattleHoldout.slice(0, WINDOW_ROWS);
    await send("calm", calm);
    await send("decorrelated", decorrelated(calm));
    const closed = (await summary()).windows.filter((w) => w.closed);
    expect(closed).toHaveLength(2);
    const [calmWindow, brokenWindow] = closed.map((w) => multivariateDrift(w.reconstruction)!);
    expect(calmWindow!.rows).toBe(WINDOW_ROWS);
    expect(calmWindow!.drift, `calm ${calmWindow!.reconstructionError} in [${calmWindow!.lower}, ${calmWindow!.upper}]`).toBe(false);
    expect(brokenWindow!.drift, `decorrelated ${brokenWindow!.reconstructionError} vs [${brokenWindow!.lower}, ${brokenWindow!.upper}]`).toBe(true);
    expect(brokenWindow!.reconstructionError).toBeGreaterThan(brokenWindow!.upper);
    expect(closed[1]!.drift!.driftedFeatures).toBe(0);

    // The sidecar's sum is every row's error as the stored reference computes it.
    const pca = new PcaReconstruction(fx.trained.metadata.multivariateReference!);
    const expected = calm.reduce((s, r) => s + pca.errorOf(WEATHER_FEATURES.map((f) => Number(r[f]))), 0);
    expect(closed[0]!.reconstruction!.sumError).toBeCloseTo(expected, 6);
  });

  it("replicas merge exactly: the merged window's error is the mean over both replicas' rows, judged at their size", async () => {
    const one = await summary();
    const other: SidecarSummary = { ...one, pod: "replica-2" };
    const merged = mergeSummaries([one, other]).windows.filter((w) => w.closed);
    const single = one.windows.filter((w) => w.closed);
    merged.forEach((w, i) => {
      expect(w.reconstruction!.rows).toBe(2 * single[i]!.reconstruction!.rows);
      expect(w.reconstruction!.sumError).toBe(2 * single[i]!.reconstruction!.sumError);
      const m = multivariateDrift(w.reconstruction)!;
      const s = multivariateDrift(single[i]!.reconstruction)!;
      expect(m.reconstructionError).toBeCloseTo(s.reconstructionError, 12);
      // Twice the rows: a band narrower by about √2 (600 rows scale the std measured at 1000, 300 the one at 300;
      // each is a mean of 1000 drawn windows, within a few percent).
      expect((s.upper - s.lower) / (m.upper - m.lower)).toBeGreaterThan(Math.SQRT2 * 0.95);
      expect((s.upper - s.lower) / (m.upper - m.lower)).toBeLessThan(Math.SQRT2 * 1.05);
    });
  });

  it("refuses a summary whose reconstruction block is malformed, naming the field", async () => {
    const s = structuredClone(await summary());
    s.windows[0]!.reconstruction!.sumError = -1;
    expect(() => parseSidecarSummary(s)).toThrow(/windows\.0\.reconstruction\.sumError/);
    const t = structuredClone(await summary());
    t.windows[1]!.reconstruction!.band.mean = 99;
    expect(() => parseSidecarSummary(t)).toThrow(/windows\.1\.reconstruction\.band: differs/);
  });
});
