// policy.triggerOn: drift explains, degradation decides — when labels can tell. Given a window whose inputs drifted
// (like New York traffic on a Seattle model) and feedback that says how accurate the model still is, each mode
// judges the window as a user reading the reasons expects.
import { describe, expect, it } from "vitest";
import {
  compare,
  DatasetProfile,
  DEFAULT_POLICY,
  evaluatePolicy,
  evaluateWindow,
  INITIAL_POLICY_STATE,
  MAX_REASON_LENGTH,
  MAX_REASONS,
  type DriftReport,
  type PolicyConfig,
  type TriggerOn,
  type WindowObservation,
} from "../../../src/monitoring/index.js";

const FEATURES = ["temp_max", "wind", "temp_min", "precipitation"];
const schema = FEATURES.map((name) => ({ name, type: "numeric" as const }));
const rows = (shift: number) =>
  Array.from({ length: 200 }, (_, i) => ({ temp_max: (i % 20) + shift, wind: ((i * 7) % 13) + shift, temp_min: i % 17, precipitation: (i * 3) % 11 }));
const reference = DatasetProfile.fromRows(schema, rows(0));
/** temp_max and wind moved far: 2 of 4 features drifted, share 0.5 = the threshold, so dataset drift. */
const drifted: DriftReport = compare(reference, DatasetProfile.fromRows(schema, rows(10)), { method: "ks" });
const calm: DriftReport = compare(reference, DatasetProfile.fromRows(schema, rows(0)), { method: "ks" });

function policy(triggerOn: TriggerOn, extra: Partial<PolicyConfig> = {}): PolicyConfig {
  return {
    ...DEFAULT_POLICY,
    triggerOn,
    minSamples: 100,
    minLabelledSamples: 50,
    consecutiveWindows: 1,
    metrics: [{ metric: "accuracy", min: 0.75 }],
    minRobustness: 0.99,
    ...extra,
  };
}

function obs(labelled: number, accuracy: number | null, drift: DriftReport, extra: Partial<WindowObservation> = {}): WindowObservation {
  return { endMs: 3_600_000, samples: 200, labelledSamples: labelled, drift, metrics: { accuracy: labelled > 0 ? accuracy : null }, robustness: 1, ...extra };
}

describe("policy.triggerOn", () => {
  it("the fixture: temp_max and wind drifted, enough for dataset drift", () => {
    expect(drifted.drift).toBe(true);
    expect(drifted.features.filter((f) => f.drift).map((f) => f.name)).toEqual(["temp_max", "wind"]);
    expect(calm.drift).toBe(false);
  });

  describe("auto", () => {
    it("drifted but accurate with enough labels: healthy, decided by labels, the drift noted", () => {
      const w = evaluateWindow(obs(62, 0.93, drifted), policy("auto"));
      expect(w).toMatchObject({ verdict: "healthy", decidedBy: "labels", basis: "decided by labels (62 labelled rows ≥ 50)", fired: [] });
      expect(w.reasons).toEqual(["drift in temp_max, wind measured but not a violation: decided by labels (62 labelled rows ≥ 50)"]);
    });

    it("drifted and inaccurate with enough labels: violated on accuracy, drift named as the likely cause", () => {
      const w = evaluateWindow(obs(62, 0.61, drifted), policy("auto"));
      expect(w).toMatchObject({ verdict: "violated", decidedBy: "labels", fired: ["metric-min"] });
      expect(w.reasons.join("; ")).toBe("decided by labels (62 labelled rows ≥ 50): accuracy 0.6100 < minimum 0.75; likely cause: drift in temp_max, wind");
    });

    it("the boundary at minLabelledSamples: 49 labelled rows are judged on drift, 50 on labels", () => {
      const at49 = evaluateWindow(obs(49, 0.93, drifted), policy("auto"));
      expect(at49).toMatchObject({ verdict: "violated", decidedBy: "drift", fired: ["dataset-drift"] });
      expect(at49.reasons[0]).toMatch(
        /^decided by drift \(49 labelled rows < 50\): dataset drift: 2\/4 features drifted \(share 0.5000 ≥ 0.5\): temp_max, wind$/,
      );
      expect(at49.reasons.slice(1).join("\n")).toMatch(/temp_max: ks p-value[\s\S]*wind: ks p-value/);
      const at50 = evaluateWindow(obs(50, 0.93, drifted), policy("auto"));
      expect(at50).toMatchObject({ verdict: "healthy", decidedBy: "labels" });
    });

    it("with too few labels a bad accuracy does not decide, and no drift means healthy", () => {
      expect(evaluateWindow(obs(10, 0.2, calm), policy("auto"))).toMatchObject({ verdict: "healthy", decidedBy: "drift", reasons: [] });
      // Stability belongs to the labels: it is not judged either.
      expect(evaluateWindow(obs(10, 0.2, calm, { stability: 0.1 }), policy("auto", { minStability: 0.8 })).verdict).toBe("healthy");
      expect(evaluateWindow(obs(60, 0.9, calm, { stability: 0.1 }), policy("auto", { minStability: 0.8 })).fired).toEqual(["stability"]);
    });

    it("robustness decides in both regimes", () => {
      expect(evaluateWindow(obs(60, 0.9, calm, { robustness: 0.9 }), policy("auto")).fired).toEqual(["robustness"]);
      expect(evaluateWindow(obs(0, null, calm, { robustness: 0.9 }), policy("auto")).fired).toEqual(["robustness"]);
    });

    it("is the default", () => {
      expect(DEFAULT_POLICY).toMatchObject({ triggerOn: "auto", minLabelledSamples: 50 });
    });
  });

  describe("performance", () => {
    it("drift never triggers; the quality metric does, with drift as the likely cause", () => {
      expect(evaluateWindow(obs(0, null, drifted), policy("performance"))).toMatchObject({ verdict: "healthy", decidedBy: "labels", fired: [] });
      const bad = evaluateWindow(obs(80, 0.5, drifted), policy("performance"));
      expect(bad).toMatchObject({ verdict: "violated", decidedBy: "labels", fired: ["metric-min"] });
      expect(bad.reasons.join("; ")).toBe(
        "decided by labels (policy.triggerOn performance): accuracy 0.5000 < minimum 0.75; likely cause: drift in temp_max, wind",
      );
    });

    it("below minLabelledSamples the metric is not judged, and says so", () => {
      const few = evaluateWindow(obs(49, 0.2, calm, { robustness: null }), policy("performance"));
      expect(few.verdict).toBe("insufficient-data");
      expect(few.reasons.join("; ")).toContain("quality metric not judged: 49 labelled rows < 50");
      expect(evaluateWindow(obs(50, 0.2, calm), policy("performance")).fired).toEqual(["metric-min"]);
    });
  });

  describe("drift", () => {
    it("only drift and robustness decide: a bad accuracy is not a violation", () => {
      expect(evaluateWindow(obs(100, 0.2, calm, { stability: 0.1 }), policy("drift", { minStability: 0.8 }))).toMatchObject({
        verdict: "healthy",
        decidedBy: "drift",
      });
      const w = evaluateWindow(obs(100, 0.95, drifted), policy("drift"));
      expect(w).toMatchObject({ verdict: "violated", decidedBy: "drift", fired: ["dataset-drift"] });
      expect(w.reasons[0]).toMatch(/^decided by drift \(policy.triggerOn drift\): dataset drift/);
      expect(evaluateWindow(obs(100, 0.95, calm, { robustness: 0.5 }), policy("drift")).fired).toEqual(["robustness"]);
    });
  });

  describe("any", () => {
    it("every rule decides, as before triggerOn existed", () => {
      const both = evaluateWindow(obs(100, 0.6, drifted), policy("any"));
      expect(both).toMatchObject({ verdict: "violated", decidedBy: "labels", fired: ["metric-min", "dataset-drift"] });
      expect(both.reasons[0]).toBe("decided by labels (policy.triggerOn any): accuracy 0.6000 < minimum 0.75");
      expect(both.reasons.join("; ")).not.toContain("likely cause");
      expect(evaluateWindow(obs(100, 0.95, drifted), policy("any"))).toMatchObject({ verdict: "violated", decidedBy: "drift", fired: ["dataset-drift"] });
      // No labelled-row floor: one labelled row is judged.
      expect(evaluateWindow(obs(1, 0, calm), policy("any")).fired).toEqual(["metric-min"]);
      expect(evaluateWindow(obs(100, 0.95, calm), policy("any"))).toMatchObject({ verdict: "healthy", decidedBy: "labels" });
    });
  });

  it("keeps reasons short whatever the feature count: at most 8, each at most 256 characters, the streak still shown", () => {
    const wide = Array.from({ length: 300 }, (_, i) => ({ name: `sensor_${String(i).padStart(3, "0")}_${"x".repeat(100)}`, type: "numeric" as const }));
    const wideRows = (shift: number) => Array.from({ length: 60 }, (_, r) => Object.fromEntries(wide.map((f, i) => [f.name, ((r * (i + 3)) % 29) + shift])));
    const report = compare(DatasetProfile.fromRows(wide, wideRows(0)), DatasetProfile.fromRows(wide, wideRows(50)), { method: "ks" });
    expect(report.driftedFeatures).toBe(300);
    const config = policy("any", { consecutiveWindows: 3, minStability: 0.9 });
    const { decision } = evaluatePolicy(INITIAL_POLICY_STATE, obs(100, 0.1, report, { stability: 0.1, robustness: 0.5, samples: 60 }), {
      ...config,
      minSamples: 50,
    });
    expect(decision.reasons.length).toBeLessThanOrEqual(MAX_REASONS);
    for (const r of decision.reasons) expect(r.length).toBeLessThanOrEqual(MAX_REASON_LENGTH);
    expect(decision.reasons.at(-1)).toBe("violation 1 of 3 consecutive windows needed");
    expect(decision.reasons.join("; ")).toMatch(/features drifted \(share 1 ≥ 0.5\): sensor_000_x+ and 299 more/);
  });
});

describe("policy.triggerOn with a label-free estimate (too few labels, a calibrated classifier)", () => {
  const estimated = (accuracy: number) => ({ estimatedMetrics: { accuracy }, estimatedSamples: 200 });

  it("auto: a window with 10 labels is judged on its estimated accuracy, not on drift, and says so", () => {
    const low = evaluateWindow(obs(10, 0.9, calm, estimated(0.6)), policy("auto"));
    expect(low.verdict).toBe("violated");
    expect(low.decidedBy).toBe("estimate");
    expect(low.fired).toEqual(["metric-min"]);
    expect(low.reasons[0]).toBe(
      "decided by estimate (10 labelled rows < 50; estimated from 200 rows' calibrated confidence): estimated accuracy 0.6000 < minimum 0.75",
    );
    // Drifted inputs with a good estimate: healthy, the drift named but not a violation.
    const shifted = evaluateWindow(obs(10, null, drifted, estimated(0.82)), policy("auto"));
    expect(shifted.verdict).toBe("healthy");
    expect(shifted.decidedBy).toBe("estimate");
    expect(shifted.reasons[0]).toMatch(/^drift in temp_max, wind measured but not a violation: decided by estimate/);
  });

  it("auto without an estimate (uncalibrated version or regression) falls back to drift", () => {
    const judged = evaluateWindow(obs(10, null, drifted, { estimatedMetrics: { accuracy: null } }), policy("auto"));
    expect(judged.decidedBy).toBe("drift");
    expect(judged.fired).toEqual(["dataset-drift"]);
  });

  it("auto: rows beyond the reference's range that could flip the verdict set the estimate aside; drift decides, and says why", () => {
    const text = "18 of 20 rows outside the reference's range (7.5% expected, p 1.3e-18)";
    const outsideReference = { share: 0.9, text };
    // A confidently wrong model on unfamiliar inputs: its estimate says 0.97, but 90% of the rows could be anything.
    const judged = evaluateWindow(obs(0, null, drifted, { ...estimated(0.97), outsideReference }), policy("auto"));
    expect(judged).toMatchObject({ verdict: "violated", decidedBy: "drift", fired: ["dataset-drift"] });
    expect(judged.basis).toBe(
      `decided by drift (0 labelled rows < 50; estimate not trusted: ${text}; estimated accuracy 0.9700 ± 0.9000 spans the minimum 0.75)`,
    );
    // 10% outside cannot take 0.97 below 0.75, nor 0.6 above it: the estimate decides either way.
    const few = { share: 0.1, text: "2 of 20 rows outside the reference's range" };
    expect(evaluateWindow(obs(0, null, drifted, { ...estimated(0.97), outsideReference: few }), policy("auto"))).toMatchObject({
      verdict: "healthy",
      decidedBy: "estimate",
    });
    expect(evaluateWindow(obs(0, null, drifted, { ...estimated(0.6), outsideReference: few }), policy("auto"))).toMatchObject({
      verdict: "violated",
      decidedBy: "estimate",
    });
    // An error bound: rows outside could have any error, so any significant share sets a regressor's estimate aside.
    const mae = policy("auto", { metrics: [{ metric: "mae", max: 3 }] });
    const regression = evaluateWindow(obs(0, null, drifted, { estimatedMetrics: { mae: 1.9 }, estimatedSamples: 60, outsideReference: few }), mae);
    expect(regression).toMatchObject({ decidedBy: "drift", verdict: "violated" });
    expect(regression.basis).toContain("their mae could be anything");
    // Enough labels: they decide, as always.
    expect(evaluateWindow(obs(60, 0.9, drifted, { ...estimated(0.97), outsideReference }), policy("auto"))).toMatchObject({
      verdict: "healthy",
      decidedBy: "labels",
    });
    // performance: no estimate to stand in for the metric, and the note says why.
    const performance = evaluateWindow(obs(0, null, drifted, { ...estimated(0.8), outsideReference }), policy("performance"));
    expect(performance).toMatchObject({ verdict: "healthy", decidedBy: "labels" });
    expect(performance.reasons.join(" ")).toContain(`estimate not trusted: ${text}`);
  });

  it("performance: the estimate stands in for the metric when labels are too few; enough labels always win", () => {
    const sparse = evaluateWindow(obs(10, null, drifted, estimated(0.6)), policy("performance"));
    expect(sparse).toMatchObject({ verdict: "violated", decidedBy: "estimate", fired: ["metric-min"] });
    // 60 labels say 0.9: the estimate of 0.6 is ignored.
    const labelled = evaluateWindow(obs(60, 0.9, drifted, estimated(0.6)), policy("performance"));
    expect(labelled).toMatchObject({ verdict: "healthy", decidedBy: "labels" });
  });

  it("drift and any ignore the estimate", () => {
    expect(evaluateWindow(obs(10, null, calm, estimated(0.1)), policy("drift"))).toMatchObject({ verdict: "healthy", decidedBy: "drift" });
    expect(evaluateWindow(obs(10, null, calm, estimated(0.1)), policy("any")).fired).not.toContain("metric-min");
  });
});
