// Given real weather traffic summarised the way a sidecar does, the operator's monitoring status reads as a user expects,
// also when labels come after their windows closed (re-judged).
import { describe, expect, it } from "vitest";
import { applyModelDeploymentDefaults, type ModelDeploymentSpec, type ModelDeploymentStatus, type ResolvedModelDeployment } from "../../../src/api/index.js";
import { loadWeatherDays, splitWeather, WEATHER_FEATURES, type WeatherDay } from "../../../src/demo/weather-data.js";
import { ConfidenceEstimate } from "../../../src/monitoring/confidence-estimate.js";
import { compare, DatasetProfile } from "../../../src/monitoring/index.js";
import {
  classificationCounts,
  estimatedMetrics,
  labelledMetrics,
  mergeSummaries,
  PREDICTION_COLUMN,
  SUMMARY_FORMAT,
  type SidecarSummary,
  type WindowSummary,
} from "../../../src/monitoring/summary.js";
import {
  combineDrift,
  degradedCondition,
  healthTransitionEvents,
  monitoringStatus,
  servingGroup,
  type PodScrape,
} from "../../../src/operator/monitoring/health.js";
import { parseSummary, readyServingPods } from "../../../src/operator/monitoring/reconciler.js";

const split = splitWeather(loadWeatherDays(), 300, 300);
const WEATHER_CLASSES = ["drizzle", "fog", "rain", "snow", "sun"];
const schema = WEATHER_FEATURES.map((name) => ({ name, type: "numeric" as const }));
const reference = DatasetProfile.fromRows(schema, split.seattleTraining);
const referencePredictions = DatasetProfile.fromRows(
  [{ name: PREDICTION_COLUMN, type: "categorical" }],
  split.seattleTraining.map((d) => ({ prediction: d.weather })),
);

/**
 * A closed window of `days` as a sidecar summarises it; `wrong` of the predictions miss (feedback = the real weather);
 * feedback came for the first `labelled` rows (default: all); with `confidence`, each row's calibrated probability of
 * its predicted class, the rest spread evenly (the sidecar's estimate of a calibrated classifier).
 */
function window(
  days: readonly WeatherDay[],
  startMs: number,
  opts: { wrong?: number; failed?: number; closed?: boolean; labelled?: number; confidence?: number } = {},
): WindowSummary {
  const features = DatasetProfile.fromRows(schema, days);
  const truth = days.map((d) => d.weather);
  const predicted = truth.map((t, i) => (i < (opts.wrong ?? 0) ? (t === "sun" ? "rain" : "sun") : t));
  const predictions = DatasetProfile.fromRows(
    [{ name: PREDICTION_COLUMN, type: "categorical" }],
    predicted.map((p) => ({ prediction: p })),
  );
  const fed = opts.labelled ?? days.length;
  const labelled = classificationCounts(truth.slice(0, fed), predicted.slice(0, fed));
  const estimate = opts.confidence === undefined ? undefined : new ConfidenceEstimate(WEATHER_CLASSES);
  for (const p of estimate ? predicted : [])
    estimate!.add(WEATHER_CLASSES.map((c) => (c === p ? opts.confidence! : (1 - opts.confidence!) / (WEATHER_CLASSES.length - 1))));
  const drift = compare(reference, features, { method: "ks" });
  drift.prediction = compare(referencePredictions, predictions, { method: "chisquare", predictionFeatures: [PREDICTION_COLUMN] }).prediction;
  return {
    start: new Date(startMs).toISOString(),
    end: new Date(startMs + 60_000).toISOString(),
    closed: opts.closed ?? true,
    requests: days.length,
    failedRequests: opts.failed ?? 0,
    rejectedRequests: 0,
    rows: days.length,
    features: features.toJSON(),
    predictions: predictions.toJSON(),
    labelled,
    ...(estimate ? { estimate: estimate.toJSON() } : {}),
    metrics: { ...labelledMetrics(labelled), ...estimatedMetrics(estimate?.toJSON()) },
    drift,
  };
}

function summary(pod: string, windows: WindowSummary[], version = "v1"): SidecarSummary {
  return {
    format: SUMMARY_FORMAT,
    pod,
    model: "weather",
    version,
    task: "classification",
    generatedAt: windows.at(-1)?.end ?? "2026-11-26T12:00:00.000Z",
    totals: { requests: 0, failedRequests: 0, rejectedRequests: 0, rows: 0, feedback: 0, feedbackRejected: 0 },
    windows,
  };
}

function md(policy: Record<string, unknown> = {}, status?: ModelDeploymentStatus, generation = 3, version?: string): ResolvedModelDeployment {
  return {
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: "weather", namespace: "ml", generation },
    spec: applyModelDeploymentDefaults({
      model: { name: "weather", storageUri: "pvc://models/store", ...(version ? { version } : {}) },
      monitoring: { features: schema, labelField: "weather", task: "classification", window: { size: 50 }, drift: { method: "ks" } },
      policy: { minSamples: 40, consecutiveWindows: 2, minAccuracy: 0.7, cooldown: "1h", ...policy },
    } as ModelDeploymentSpec),
    status,
  };
}

const T0 = Date.parse("2026-11-26T12:00:00Z");
const NOW = new Date("2026-11-26T12:30:00Z");
const seattle = (i: number) => split.seattleTraffic.slice(i * 50, i * 50 + 50);
const newYork = (i: number) => split.newYorkTraffic.slice(i * 50, i * 50 + 50);
const cond = (s: ModelDeploymentStatus, type: string) => s.conditions!.find((c) => c.type === type)!;
const scrape = (...windows: WindowSummary[]): PodScrape[] => [{ pod: "weather-serving-a", summary: summary("weather-serving-a", windows) }];

/** Feeds windows one scrape at a time, as the reconciler would, carrying status forward. */
function run(model: (s?: ModelDeploymentStatus) => ResolvedModelDeployment, windows: WindowSummary[]): ModelDeploymentStatus[] {
  const out: ModelDeploymentStatus[] = [];
  let status: ModelDeploymentStatus | undefined = { observedGeneration: 3, replicas: 1, readyReplicas: 1 };
  for (let i = 1; i <= windows.length; i++) {
    status = monitoringStatus(model(status), scrape(...windows.slice(0, i)), NOW);
    out.push(status);
  }
  return out;
}

describe("monitoring status from the sidecars' summaries", () => {
  it("reports a calm Seattle window: metrics filled, no drift, not degraded, nothing NaN", () => {
    const [s] = run((st) => md({}, st), [window(seattle(0), T0, { wrong: 5 })]);
    expect(s!.lastMetrics).toMatchObject({
      samples: 50,
      labelledSamples: 50,
      metric: "accuracy",
      accuracy: 0.9,
      driftShare: 0,
      driftedFeatures: [],
      robustness: 1,
      errorRate: 0,
      stability: 1,
      verdict: "Healthy",
    });
    expect(s!.lastMetrics!.windowStart).toBe("2026-11-26T12:00:00.000Z");
    expect(JSON.stringify(s)).not.toMatch(/NaN|null/);
    expect(cond(s!, "DriftDetected")).toMatchObject({ status: "False", reason: "NoDrift", observedGeneration: 3 });
    expect(cond(s!, "Degraded")).toMatchObject({ status: "False", reason: "Healthy" });
    expect(cond(s!, "Degraded").message).toContain("accuracy 0.9");
    expect(s!.policy).toMatchObject({ verdict: "Healthy", consecutiveViolations: 0 });
    // Fields other reconcilers own stay as they were.
    expect(s).toMatchObject({ observedGeneration: 3, replicas: 1, readyReplicas: 1 });
  });

  it("flags New York traffic as drift naming the features, and Degraded only after the consecutive windows", () => {
    const statuses = run(
      (st) => md({}, st),
      [window(seattle(0), T0), window(newYork(0), T0 + 60_000, { wrong: 20 }), window(newYork(1), T0 + 120_000, { wrong: 20 })],
    );
    const [, first, second] = statuses;
    const drift = cond(first!, "DriftDetected");
    expect(drift).toMatchObject({ status: "True", reason: "DriftAboveThreshold" });
    expect(drift.message).toMatch(/features drifted \(share [\d.]+ ≥ policy.maxDriftShare 0.5\)/);
    expect(drift.message).toContain("wind: ks p-value");
    expect(first!.lastMetrics!.driftedFeatures).toEqual(expect.arrayContaining(["temp_min", "wind"]));
    expect(first!.lastMetrics!.accuracy).toBeCloseTo(0.6);
    // One violating window of the two required: not degraded yet, and the message says so.
    expect(cond(first!, "Degraded")).toMatchObject({ status: "False", reason: "Healthy" });
    expect(cond(first!, "Degraded").message).toContain("violation 1 of 2");
    expect(first!.policy).toMatchObject({ verdict: "Healthy", consecutiveViolations: 1 });
    expect(cond(second!, "Degraded")).toMatchObject({ status: "True", reason: "AccuracyBelowThreshold" });
    expect(cond(second!, "Degraded").message).toContain("accuracy 0.6000 < minimum 0.7");
    expect(second!.policy).toMatchObject({
      verdict: "Violated",
      consecutiveViolations: 2,
      lastTriggerTime: "2026-11-26T12:03:00Z",
      cooldownUntil: "2026-11-26T13:03:00Z",
    });
    // Stability looks back over the windows: 0.9…1 then 0.6 moves it.
    expect(second!.lastMetrics!.stability).toBeLessThan(1);
  });

  it("New York drifts on every feature yet is served accurately: DriftDetected True, but the labels decide Healthy", () => {
    const [, ny] = run((st) => md({ consecutiveWindows: 1 }, st), [window(seattle(0), T0, { wrong: 5 }), window(newYork(0), T0 + 60_000, { wrong: 4 })]);
    expect(ny!.lastMetrics).toMatchObject({ labelledSamples: 50, accuracy: 0.92, verdict: "Healthy", decidedBy: "labels" });
    expect(ny!.lastMetrics!.driftedFeatures!.length).toBeGreaterThanOrEqual(2);
    const drift = cond(ny!, "DriftDetected");
    expect(drift).toMatchObject({ status: "True", reason: "DriftAboveThreshold" });
    expect(drift.message).toContain("not a violation by itself: decided by labels (50 labelled rows ≥ 50)");
    expect(cond(ny!, "Degraded")).toMatchObject({ status: "False", reason: "Healthy" });
    expect(cond(ny!, "Degraded").message).toMatch(
      /^within policy: accuracy 0.92.*; drift in .*wind measured but not a violation: decided by labels \(50 labelled rows ≥ 50\)$/,
    );
    expect(ny!.policy).toMatchObject({ verdict: "Healthy", consecutiveViolations: 0 });
  });

  it("with too few labelled rows drift decides; triggerOn any lets drift decide whatever the labels; drift only ignores accuracy", () => {
    const few = run((st) => md({ consecutiveWindows: 1 }, st), [window(newYork(0), T0, { wrong: 4, labelled: 49 })])[0]!;
    expect(few.lastMetrics).toMatchObject({ labelledSamples: 49, verdict: "Violated", decidedBy: "drift" });
    expect(cond(few, "Degraded")).toMatchObject({ status: "True", reason: "DriftAboveThreshold" });
    expect(cond(few, "Degraded").message).toMatch(/^decided by drift \(49 labelled rows < 50\): dataset drift: \d\/4 features drifted/);
    expect(cond(few, "DriftDetected").message).not.toContain("not a violation");

    const any = run((st) => md({ consecutiveWindows: 1, triggerOn: "any" }, st), [window(newYork(0), T0, { wrong: 4 })])[0]!;
    expect(any.lastMetrics).toMatchObject({ verdict: "Violated", decidedBy: "drift" });
    expect(cond(any, "Degraded").reason).toBe("DriftAboveThreshold");

    const bad = run((st) => md({ consecutiveWindows: 1, triggerOn: "drift" }, st), [window(seattle(0), T0, { wrong: 30 })])[0]!;
    expect(bad.lastMetrics).toMatchObject({ accuracy: 0.4, verdict: "Healthy", decidedBy: "drift" });

    const perf = run((st) => md({ consecutiveWindows: 1, triggerOn: "performance" }, st), [window(newYork(0), T0, { wrong: 30 })])[0]!;
    expect(cond(perf, "Degraded")).toMatchObject({ status: "True", reason: "AccuracyBelowThreshold" });
    expect(cond(perf, "Degraded").message).toMatch(
      /^decided by labels \(policy.triggerOn performance\): accuracy 0.4000 < minimum 0.7; likely cause: drift in /,
    );
  });

  it("rounds what kubectl shows to 4 significant digits, and judges the exact values", () => {
    const days = split.seattleTraffic.slice(0, 75);
    const s = monitoringStatus(md({ minAccuracy: 0.90667 }), scrape(window(days, T0, { wrong: 7, failed: 1 })), NOW);
    // 68/75 = 0.90666…; 1 failed of 75 requests.
    expect(s.lastMetrics).toMatchObject({ accuracy: 0.9067, robustness: 0.9867, errorRate: 0.01333 });
    // 0.90666… < 0.90667 although the rounded 0.9067 is not.
    expect(s.lastMetrics!.verdict).toBe("Violated");
    for (const key of ["accuracy", "driftShare", "stability", "robustness", "errorRate", "predictionDrift"] as const) {
      const v = s.lastMetrics![key];
      if (v !== undefined) expect(Number(v.toPrecision(4)), key).toBe(v);
    }
  });

  it("writes status.servingVersion from the sidecars, keeps it when none answers, and leaves a rolling-out pin alone", () => {
    const served = monitoringStatus(md(), [{ pod: "a", summary: summary("a", [window(seattle(0), T0)], "v7") }], NOW);
    expect(served.servingVersion).toBe("v7");
    // Before any window closes the version is already known.
    const early = monitoringStatus(md(), [{ pod: "a", summary: summary("a", [window(seattle(0).slice(0, 5), T0, { closed: false })], "v7") }], NOW);
    expect(early.servingVersion).toBe("v7");
    const down = monitoringStatus(md({}, served), [{ pod: "a", error: "connection refused" }], NOW);
    expect(down.servingVersion).toBe("v7");
    // Rolling out to the pinned v8 (the serving reconciler wrote it) while v7 pods are still the majority.
    const rolling = monitoringStatus(
      md({}, { ...served, servingVersion: "v8" }, 3, "v8"),
      [{ pod: "a", summary: summary("a", [window(seattle(1), T0 + 60_000)], "v7") }],
      NOW,
    );
    expect(rolling.servingVersion).toBe("v8");
  });

  it("does not count a window twice when scraped again before the next one closes", () => {
    const model = (st?: ModelDeploymentStatus) => md({ consecutiveWindows: 2 }, st);
    const once = monitoringStatus(model(), scrape(window(newYork(0), T0, { wrong: 20 })), NOW);
    const twice = monitoringStatus(model(once), scrape(window(newYork(0), T0, { wrong: 20 })), new Date(NOW.getTime() + 30_000));
    expect(twice).toEqual(once);
    expect(twice.policy!.consecutiveViolations).toBe(1);
  });

  it("keeps paused policies from recording a trigger or a cooldown", () => {
    const statuses = run((st) => md({ paused: true, consecutiveWindows: 1 }, st), [window(newYork(0), T0, { wrong: 20 })]);
    expect(cond(statuses[0]!, "Degraded")).toMatchObject({ status: "True" });
    expect(cond(statuses[0]!, "Degraded").message).toContain("policy.paused");
    expect(statuses[0]!.policy!.lastTriggerTime).toBeUndefined();
    expect(statuses[0]!.policy!.cooldownUntil).toBeUndefined();
  });

  it("says Unknown with a clear reason for too few rows, no closed window, no ready pod, and sidecars that do not answer", () => {
    const small = monitoringStatus(md(), scrape(window(seattle(0).slice(0, 20), T0)), NOW);
    expect(cond(small, "DriftDetected")).toMatchObject({ status: "Unknown", reason: "InsufficientData" });
    expect(cond(small, "DriftDetected").message).toContain("(20 rows) has fewer rows than policy.minSamples (40)");
    expect(cond(small, "Degraded")).toMatchObject({ status: "Unknown", reason: "InsufficientData" });
    expect(small.lastMetrics!.samples).toBe(20);

    const open = monitoringStatus(md(), scrape(window(seattle(0).slice(0, 12), T0, { closed: false })), NOW);
    expect(cond(open, "DriftDetected").message).toBe("no monitoring window has closed yet: the open window has 12 rows (a window closes at 50 rows)");
    expect(open.lastMetrics).toBeUndefined();

    expect(cond(monitoringStatus(md(), [], NOW), "Degraded").message).toBe("no ready serving pod to read monitoring from");
    const down = monitoringStatus(md(), [{ pod: "weather-serving-a", error: "GET http://10.0.0.5:8080/v1/monitoring/summary: no answer within 3000 ms" }], NOW);
    expect(cond(down, "DriftDetected").message).toBe(
      "no sidecar answered: weather-serving-a: GET http://10.0.0.5:8080/v1/monitoring/summary: no answer within 3000 ms",
    );
  });

  it("merges replicas: counts add, a feature drifts when the replicas with most of its rows say so, a failed pod is skipped", () => {
    const a = summary("weather-serving-a", [window(newYork(0), T0)]);
    const b = summary("weather-serving-b", [window(seattle(0).slice(0, 45), T0)]);
    const s = monitoringStatus(
      md(),
      [
        { pod: a.pod, summary: a },
        { pod: b.pod, summary: b },
        { pod: "weather-serving-c", error: "connection refused" },
      ],
      NOW,
    );
    expect(s.lastMetrics).toMatchObject({ samples: 95, labelledSamples: 95 });
    // New York's 50 rows outweigh Seattle's 45: its drifted features win.
    expect(s.lastMetrics!.driftedFeatures!.length).toBeGreaterThan(0);
    const combined = combineDrift(
      [
        { rows: 10, report: a.windows[0]!.drift! },
        { rows: 45, report: b.windows[0]!.drift! },
      ],
      0.5,
    )!;
    expect(combined.driftedFeatures).toBe(b.windows[0]!.drift!.driftedFeatures);
  });

  it("during a rollout reads the version most pods serve", () => {
    const old = summary("a", [window(seattle(0), T0)], "v1");
    const next = [summary("b", [window(seattle(1), T0)], "v2"), summary("c", [window(seattle(2), T0)], "v2")];
    expect(servingGroup([old, ...next]).map((s) => s.pod)).toEqual(["b", "c"]);
  });

  it("emits Events only on transitions: drift appearing, degradation, recovery", () => {
    // Stability would keep it degraded a while after one bad window (it looks back); this story is about the rest.
    const statuses = run(
      (st) => md({ consecutiveWindows: 1, minStability: 0 }, st),
      [
        window(seattle(0), T0),
        window(newYork(0), T0 + 60_000, { wrong: 20 }),
        window(newYork(1), T0 + 120_000, { wrong: 20 }),
        window(seattle(1), T0 + 180_000),
      ],
    );
    const events = statuses.map((s, i) => healthTransitionEvents(i === 0 ? undefined : statuses[i - 1], s).map((e) => `${e.type}/${e.reason}`));
    expect(events).toEqual([[], ["Warning/DriftAboveThreshold", "Warning/AccuracyBelowThreshold"], [], ["Normal/NoDrift", "Normal/Healthy"]]);
  });

  it("rejects what is not a sidecar summary, and scrapes only ready serving pods of this ModelDeployment", () => {
    expect(() => parseSummary({ format: "other" })).toThrow('format is "other", expected ballast.dev/sidecar-summary/v1');
    expect(() => parseSummary(null)).toThrow("not a JSON object");
    const pod = (name: string, labels: Record<string, string>, ready: boolean, ip = "10.0.0.1") => ({
      metadata: { name, namespace: "ml", labels },
      status: { podIP: ip, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
    });
    const sel = { "ballast.dev/model-deployment": "weather", "app.kubernetes.io/component": "serving" };
    const pods = [pod("b", sel, true), pod("a", sel, true), pod("c", sel, false), pod("d", { ...sel, "ballast.dev/model-deployment": "other" }, true)];
    expect(readyServingPods(pods, md()).map((p) => p.metadata?.name)).toEqual(["a", "b"]);
  });
});

describe("label-free estimates (a calibrated classifier, too few labels)", () => {
  it("shows estimatedAccuracy beside the realised accuracy, and judges a sparsely labelled window on it", () => {
    const [calm, shifted] = run(
      (st) => md({ consecutiveWindows: 1 }, st),
      [window(seattle(0), T0, { wrong: 5, labelled: 10, confidence: 0.9 }), window(newYork(0), T0 + 60_000, { wrong: 20, labelled: 10, confidence: 0.6 })],
    );
    expect(calm!.lastMetrics).toMatchObject({ labelledSamples: 10, accuracy: 0.5, estimatedAccuracy: 0.9, verdict: "Healthy", decidedBy: "estimate" });
    expect(cond(calm!, "Degraded")).toMatchObject({ status: "False", reason: "Healthy" });
    expect(shifted!.lastMetrics).toMatchObject({ labelledSamples: 10, estimatedAccuracy: 0.6, verdict: "Violated", decidedBy: "estimate" });
    expect(cond(shifted!, "Degraded")).toMatchObject({ status: "True", reason: "AccuracyBelowThreshold" });
    expect(cond(shifted!, "Degraded").message).toMatch(
      /^decided by estimate \(10 labelled rows < 50; estimated from 50 rows' calibrated confidence\): estimated accuracy 0.6000 < minimum 0.7; likely cause: drift in /,
    );
    expect(cond(shifted!, "DriftDetected").message).toContain("not a violation by itself: decided by estimate");
    expect(shifted!.recentWindows!.map((w) => [w.estimatedAccuracy, w.decidedBy])).toEqual([
      [0.9, "estimate"],
      [0.6, "estimate"],
    ]);
  });

  it("a confident estimate on rows beyond the reference's range is set aside: drift decides, and the message says why", () => {
    // New York days a Seattle model extrapolates on, answered at 0.97 confidence; 40 of the 50 rows outside the range.
    const outside: WindowSummary = {
      ...window(newYork(0), T0, { wrong: 20, labelled: 10, confidence: 0.97 }),
      support: { rows: 50, outside: 40, expectedShare: 0.011, expectedShareSd: 0.011 },
    };
    const [s] = run((st) => md({ consecutiveWindows: 1 }, st), [outside]);
    expect(s!.lastMetrics).toMatchObject({ estimatedAccuracy: 0.97, verdict: "Violated", decidedBy: "drift" });
    expect(cond(s!, "Degraded").message).toMatch(
      /^decided by drift \(10 labelled rows < 50; estimate not trusted: 40 of 50 rows outside the reference's range \(1.1% expected, p [\d.e-]+\); estimated accuracy 0.9700 ± 0.8000 spans the minimum 0.7\)/,
    );
    // As many rows outside as chance gives: the estimate decides.
    const [inside] = run((st) => md({ consecutiveWindows: 1 }, st), [{ ...outside, support: { ...outside.support!, outside: 1 } }]);
    expect(inside!.lastMetrics).toMatchObject({ verdict: "Healthy", decidedBy: "estimate" });
  });

  it("without an estimate (a version trained before calibration) the same window is judged on drift", () => {
    const [s] = run((st) => md({ consecutiveWindows: 1 }, st), [window(newYork(0), T0, { wrong: 20, labelled: 10 })]);
    expect(s!.lastMetrics!.estimatedAccuracy).toBeUndefined();
    expect(s!.lastMetrics!.decidedBy).toBe("drift");
  });

  it("merges replicas' estimates exactly: the merged window's estimate is that of all their rows", () => {
    const a = window(seattle(0), T0, { confidence: 0.9 });
    const b = window(newYork(0), T0, { confidence: 0.6 });
    const merged = mergeSummaries([summary("pod-a", [a]), summary("pod-b", [b])]).windows[0]!;
    expect(merged.metrics["estimatedSamples"]).toBe(100);
    expect(merged.metrics["estimatedAccuracy"]).toBeCloseTo(0.75, 12);
  });
});

describe("windows that close between two scrapes", () => {
  it("are each judged, in order, so a burst of violating windows meets the hysteresis", () => {
    const base = md({ minLabelledSamples: 40 });
    const first = monitoringStatus(base, scrape(window(seattle(0), T0)), NOW);
    expect(first.lastMetrics?.verdict).toBe("Healthy");
    // Two bad windows close before the next scrape: the policy sees both, not only the newest.
    const burst = scrape(window(seattle(0), T0), window(seattle(1), T0 + 60_000, { wrong: 30 }), window(seattle(2), T0 + 120_000, { wrong: 30 }));
    const after = monitoringStatus({ ...base, status: first }, burst, NOW);
    expect(after.policy).toMatchObject({ verdict: "Violated", consecutiveViolations: 2 });
    expect(after.policy?.lastTriggerTime).toBeDefined();
    expect(after.lastMetrics?.windowEnd).toBe(new Date(T0 + 180_000).toISOString());
    // Scraped again with nothing new: nothing is judged twice.
    expect(monitoringStatus({ ...base, status: after }, burst, NOW).policy).toEqual(after.policy);
  });
});

describe("a violation that outlives the window that started it", () => {
  // The latest window could not be judged, but the streak still holds: Degraded keeps the reason it had, when it is one of ours.
  const decision = {
    verdict: "violated" as const,
    windowVerdict: "insufficient-data" as const,
    reasons: ["window has 3 samples"],
    fired: [],
    consecutiveViolations: 2,
    trigger: false,
    cooldownUntilMs: null,
  };
  const snapshot = { windowEnd: "2026-11-26T12:10:00Z", samples: 3 };
  const prior = (reason: string) => ({ type: "Degraded", status: "True" as const, reason, message: "earlier", lastTransitionTime: "2026-11-26T12:00:00Z" });

  it("keeps Ballast's reason, but never copies into the condition (and its Event) a reason someone else wrote into status", () => {
    expect(degradedCondition(decision, snapshot, md(), prior("AccuracyBelowThreshold")).reason).toBe("AccuracyBelowThreshold");
    expect(degradedCondition(decision, snapshot, md(), prior("not a reason: <b>hi</b>")).reason).toBe("DriftAboveThreshold");
  });
});

describe("late labels re-judge the windows they belong to", () => {
  // Window i: 50 Seattle days a minute each; `wrong` of them missed while the model is 95 % confident in every one
  // (an optimistic estimate); feedback so far for the first `labelled` rows.
  const SIZE = 50;
  const w = (i: number, wrong: number, labelled: number, days: readonly WeatherDay[] = seattle(i)) =>
    window(days, T0 + i * 60_000, { wrong, labelled, confidence: 0.95 });
  const pod = (windows: WindowSummary[], name = "weather-serving-a"): PodScrape => ({ pod: name, summary: summary(name, windows) });
  /** Scrapes in order, each status written before the next is computed; every status after each. */
  const scrapes = (all: PodScrape[][], policy: Record<string, unknown> = {}, start?: ModelDeploymentStatus): ModelDeploymentStatus[] => {
    const out: ModelDeploymentStatus[] = [];
    let status = start;
    for (const s of all) {
      status = monitoringStatus(md({ minLabelledSamples: 30, ...policy }, status), s, NOW);
      out.push(status);
    }
    return out;
  };

  // Two windows the model gets 40 % right (30 of 50 wrong) while it is 95 % confident: no label when they close.
  const closing = [[pod([w(0, 30, 0)])], [pod([w(0, 30, 0), w(1, 30, 0)])]];

  it("a window judged healthy on an optimistic estimate becomes a violation when its labels come, and the policy follows", () => {
    const [first, second, labels0, labels1] = scrapes([
      ...closing,
      // The labels of window 0 come while window 1 is the newest; then window 1's.
      [pod([w(0, 30, SIZE), w(1, 30, 0)])],
      [pod([w(0, 30, SIZE), w(1, 30, SIZE)])],
    ]);
    expect(first!.lastMetrics).toMatchObject({ labelledSamples: 0, verdict: "Healthy", decidedBy: "estimate", estimatedAccuracy: 0.95 });
    expect(second!.policy).toMatchObject({ verdict: "Healthy", consecutiveViolations: 0 });
    expect(second!.recentWindows!.every((w) => w.rejudgedTime === undefined)).toBe(true);

    // Window 0 re-judged on its 50 labels: Violated, decided by labels; what it was first is kept beside it.
    expect(labels0!.recentWindows![0]).toMatchObject({
      labelledSamples: SIZE,
      accuracy: 0.4,
      verdict: "Violated",
      decidedBy: "labels",
      consecutiveViolations: 1,
      rejudgedTime: "2026-11-26T12:30:00Z",
      firstJudged: { verdict: "Healthy", decidedBy: "estimate", labelledSamples: 0 },
    });
    // Window 1 still has no label: still the estimate's, so the streak it ends is 0 again (one violation is not two).
    expect(labels0!.recentWindows![1]).toMatchObject({ verdict: "Healthy", decidedBy: "estimate", consecutiveViolations: 0 });
    expect(labels0!.policy).toMatchObject({ verdict: "Healthy", consecutiveViolations: 0 });
    expect(labels0!.conditions!.find((c) => c.type === "Degraded")!.message).toMatch(
      /late labels re-judged window ending 2026-11-26T12:01:00.000Z Healthy \(estimate\) → Violated \(labels\)/,
    );
    const event = healthTransitionEvents(second, labels0);
    expect(event).toEqual([expect.objectContaining({ type: "Warning", reason: "WindowRejudged" })]);
    expect(event[0]!.note).toMatch(
      /Healthy, decided by estimate \(estimated accuracy 0\.95, 0 labelled rows\) → Violated, decided by labels \(accuracy 0\.4 on 50 labelled rows, 50 of them late\)/,
    );

    // Window 1's labels: two violating windows in a row — the policy is violated and triggers on window 1's end.
    expect(labels1!.lastMetrics).toMatchObject({ windowEnd: "2026-11-26T12:02:00.000Z", accuracy: 0.4, verdict: "Violated", decidedBy: "labels" });
    expect(labels1!.lastMetrics!.rejudgedTime).toBe("2026-11-26T12:30:00Z");
    expect(labels1!.policy).toMatchObject({ verdict: "Violated", consecutiveViolations: 2, lastTriggerTime: "2026-11-26T12:02:00Z" });
    const degraded = labels1!.conditions!.find((c) => c.type === "Degraded")!;
    expect(degraded).toMatchObject({ status: "True", reason: "AccuracyBelowThreshold" });
    expect(degraded.message).toMatch(
      /decided by labels \(50 labelled rows ≥ 30\): accuracy 0\.4000 < minimum 0\.7 .*; late labels re-judged window ending 2026-11-26T12:02:00.000Z Healthy \(estimate\) → Violated \(labels\)/,
    );
    expect(healthTransitionEvents(labels0, labels1).map((e) => e.reason)).toEqual(["AccuracyBelowThreshold", "WindowRejudged"]);
  });

  it("a scrape with no new label and no new window changes nothing", () => {
    const [, , labels, again] = scrapes([...closing, [pod([w(0, 30, SIZE), w(1, 30, 0)])], [pod([w(0, 30, SIZE), w(1, 30, 0)])]]);
    expect(again!.recentWindows).toEqual(labels!.recentWindows);
    expect(again!.policy).toEqual(labels!.policy);
  });

  it("a window that first had some labels is re-judged as more come; its first judgement stays", () => {
    const [, , some, all] = scrapes(
      [[pod([w(0, 30, 10)])], [pod([w(0, 30, 10), w(1, 0, SIZE)])], [pod([w(0, 30, 20), w(1, 0, SIZE)])], [pod([w(0, 30, SIZE), w(1, 0, SIZE)])]],
      { minStability: 0 },
    );
    // 20 labels are still fewer than 30: the estimate decides, the window was re-judged all the same.
    expect(some!.recentWindows![0]).toMatchObject({ labelledSamples: 20, decidedBy: "estimate", firstJudged: { labelledSamples: 10 } });
    expect(all!.recentWindows![0]).toMatchObject({ labelledSamples: SIZE, decidedBy: "labels", verdict: "Violated", firstJudged: { labelledSamples: 10 } });
    // Window 1 is healthy on its labels: one violation before it does not make a streak.
    expect(all!.policy).toMatchObject({ verdict: "Healthy", consecutiveViolations: 0 });
  });

  it("a trigger already acted on stands: a re-judged window inside its cooldown does not trigger again", () => {
    const triggered = scrapes([[pod([w(0, 30, SIZE)])], [pod([w(0, 30, SIZE), w(1, 30, SIZE)])]]);
    expect(triggered[1]!.policy).toMatchObject({ verdict: "Violated", lastTriggerTime: "2026-11-26T12:02:00Z" });
    const [, late] = scrapes([[pod([w(0, 30, SIZE), w(1, 30, SIZE), w(2, 30, 0)])], [pod([w(0, 30, SIZE), w(1, 30, SIZE), w(2, 30, SIZE)])]], {}, triggered[1]);
    expect(late!.recentWindows![2]).toMatchObject({ verdict: "Violated", decidedBy: "labels", consecutiveViolations: 3 });
    expect(late!.policy).toMatchObject({ verdict: "Violated", consecutiveViolations: 3, lastTriggerTime: "2026-11-26T12:02:00Z" });
    expect(late!.conditions!.find((c) => c.type === "Degraded")!.message).toMatch(/cooling down until 2026-11-26T13:02:00.000Z/);
  });

  it("a window whose rows changed (a replica restarted) is not the window judged: left as it was", () => {
    const [, second] = scrapes(closing);
    const fewer = seattle(0).slice(0, 30);
    const [after] = scrapes([[pod([w(0, 20, 30, fewer), w(1, 30, 0)])]], {}, second);
    expect(after!.recentWindows).toEqual(second!.recentWindows);
  });

  it("late labels split over two replicas merge exactly, and the merged window is re-judged on all of them", () => {
    // Time windows: both replicas' minute-windows align. Each replica served half of each minute's 50 days.
    const half = (i: number, part: 0 | 1) => split.seattleTraffic.slice(i * SIZE + part * 25, i * SIZE + (part + 1) * 25);
    const pods = (labelledA: number, labelledB: number) => [
      pod([w(0, 15, labelledA, half(0, 0))], "weather-serving-a"),
      pod([w(0, 15, labelledB, half(0, 1))], "weather-serving-b"),
    ];
    const [closed, lateA, lateBoth] = scrapes([pods(0, 0), pods(25, 0), pods(25, 25)]);
    expect(closed!.lastMetrics).toMatchObject({ samples: SIZE, labelledSamples: 0, decidedBy: "estimate", verdict: "Healthy" });
    // 25 late labels from one replica are fewer than 30: still the estimate's window, re-judged with the labels counted.
    expect(lateA!.lastMetrics).toMatchObject({ labelledSamples: 25, decidedBy: "estimate", rejudgedTime: "2026-11-26T12:30:00Z" });
    expect(lateBoth!.lastMetrics).toMatchObject({ labelledSamples: SIZE, accuracy: 0.4, decidedBy: "labels", verdict: "Violated" });
    const merged = mergeSummaries(pods(25, 25).map((p) => ("summary" in p ? p.summary : undefined)!)).windows[0]!;
    expect(merged.metrics).toMatchObject({ samples: SIZE, accuracy: 0.4 });
  });
});
