// Given the local cluster, the operator running as its own ServiceAccount and a weather model trained on Seattle
// in a PVC, a user sends Seattle then New York traffic with feedback and sees the operator report it:
// status.lastMetrics, DriftDetected False then True naming the features, the Version, Drift and Accuracy columns,
// an Event — and, with policy.triggerOn auto, New York judged Healthy by its labels although every input drifted,
// and, without labels but with a quality bound, by its label-free estimate.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Service } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelDeploymentStatus } from "../../../src/api/index.js";
import { sendTrafficWithFeedback, waitForService } from "../../../src/demo/traffic.js";
import { loadWeatherDays, splitWeather, weatherCsv, WEATHER_FEATURES, type WeatherDay } from "../../../src/demo/weather-data.js";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import { sampleValue } from "../../support/prometheus-text.js";
import { applyYaml, createLocalClaim, installCrdAndRbac, kubectlJson, startNamespacedOperator, trainInto, type OperatorProcess } from "./operator-process.js";

const WINDOW = 100;
const CLAIM = "models";

interface MD {
  metadata: { generation: number };
  status?: ModelDeploymentStatus;
}
const condition = (md: MD, type: string) => md.status?.conditions?.find((c) => c.type === type);
/** Rows whose feedback arrives while their window is still open; the rest close the window and are labelled after. */
const LABELLED_BEFORE_CLOSE = 90;

describe("ballast operator: monitoring what the sidecars see", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let operator: OperatorProcess;
  let stop: (() => Promise<number | null>) | undefined;
  let serviceUrl: string;
  const split = splitWeather(loadWeatherDays(), 300, 300);
  const get = () => kubectlJson<MD>(["get", "md", "weather", "-n", ns.name]);
  /** `kubectl get md weather` as a user reads it: each column's text under its header. */
  const printedColumns = async (): Promise<Record<string, string>> => {
    const [header, line] = (await kubectl(["get", "md", "weather", "-n", ns.name])).stdout.split("\n");
    const starts = [...header!.matchAll(/\S+/g)].map((m) => ({ name: m[0], at: m.index }));
    return Object.fromEntries(starts.map((c, i) => [c.name, line!.slice(c.at, starts[i + 1]?.at).trim()]));
  };
  /**
   * One window of traffic, labelled the way a pipeline does it: feedback for the first 90 rows while the window
   * is open; the last 10 rows close it and their labels come late, through `sendLateLabels`. The operator judges
   * a window once, when it first sees it closed; late labels sent at once would race its next scrape (90 or 100
   * labelled rows, and an accuracy to match), so the tests send them only after the verdict is in status.
   */
  const sendWindow = async (days: readonly WeatherDay[], idPrefix: string) => {
    const first = await sendTrafficWithFeedback({
      serviceUrl,
      feedbackUrl: serviceUrl,
      model: "weather",
      days: days.slice(0, LABELLED_BEFORE_CLOSE),
      rowsPerRequest: 10,
      idPrefix,
    });
    const closing = days.slice(LABELLED_BEFORE_CLOSE, WINDOW);
    const lastPrefix = `${idPrefix}-last`;
    await sendTrafficWithFeedback({
      serviceUrl,
      feedbackUrl: serviceUrl,
      model: "weather",
      days: closing,
      rowsPerRequest: closing.length,
      idPrefix: lastPrefix,
      withoutFeedback: true,
    });
    expect(first.feedbackAccepted).toBe(LABELLED_BEFORE_CLOSE);
    const sendLateLabels = async () => {
      const res = await fetch(`${serviceUrl}/v1/feedback`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ feedback: [{ id: `${lastPrefix}-0`, labels: closing.map((d) => d.weather) }] }),
      });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { accepted: number }).accepted).toBe(closing.length);
    };
    /** The accuracy the operator computed from the 90 labelled rows, as status shows it (4 significant digits). */
    return { expectedAccuracy: Number((first.correct / LABELLED_BEFORE_CLOSE).toPrecision(4)), sendLateLabels };
  };

  /** A window of traffic nobody labels. */
  const sendUnlabelled = (days: readonly WeatherDay[], idPrefix: string) =>
    sendTrafficWithFeedback({ serviceUrl, feedbackUrl: serviceUrl, model: "weather", days, rowsPerRequest: 10, idPrefix, withoutFeedback: true });

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("op-monitor");
    // The serving pods read the model through pvc://models/store.
    const csv = join(mkdtempSync(join(tmpdir(), "op-monitor-")), "seattle.csv");
    writeFileSync(csv, weatherCsv(split.seattleTraining));
    trainInto(join(await createLocalClaim(ns.name, CLAIM), "store"), csv, [
      "--model",
      "weather",
      "--version",
      "v1",
      "--label",
      "weather",
      "--features",
      WEATHER_FEATURES.join(","),
      "--epochs",
      "3",
    ]);
    ({ operator, stop } = await startNamespacedOperator(ns));
  });

  afterAll(async () => {
    if (stop) expect(await stop()).toBe(0);
    else await ns?.remove();
  });

  it("serves, then reports Seattle traffic as calm: lastMetrics filled, DriftDetected False", async () => {
    await applyYaml(
      stringify({
        apiVersion: "ballast.dev/v1alpha1",
        kind: "ModelDeployment",
        metadata: { name: "weather", namespace: ns.name },
        spec: {
          // Not pinned: the newest version in the store is served, and only the sidecars can tell which.
          model: { name: "weather", storageUri: `pvc://${CLAIM}/store` },
          serving: { replicas: 1, port: 8080 },
          monitoring: {
            task: "classification",
            labelField: "weather",
            features: WEATHER_FEATURES.map((f) => ({ name: f, type: "numeric" })),
            window: { size: WINDOW },
            drift: { method: "ks" },
            scrapeInterval: "1s",
          },
          policy: { minSamples: 50, consecutiveWindows: 1, cooldown: "1h", triggerOn: "auto", minLabelledSamples: 50 },
        },
      }),
    );
    const wait = await kubectl(["wait", "--for=condition=Ready", "md/weather", "-n", ns.name, "--timeout=120s"]);
    expect(wait.stdout).toContain("condition met");
    const svc = await kubectlJson<V1Service>(["get", "service", "weather", "-n", ns.name]);
    serviceUrl = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}`;
    await waitForService(`${serviceUrl}/v1/sidecar/ready`, 30_000);
    // Before any window closes the operator says why it cannot judge yet.
    const early = await waitFor("DriftDetected Unknown", async () => {
      const m = await get();
      return condition(m, "DriftDetected")?.status === "Unknown" ? m : undefined;
    });
    expect(condition(early, "DriftDetected")!.reason).toBe("InsufficientData");

    const seattle = await sendWindow(split.seattleTraffic.slice(0, WINDOW), "seattle");
    const calm = await waitFor(
      "the Seattle window in status",
      async () => {
        const m = await get();
        return m.status?.lastMetrics?.samples === WINDOW && condition(m, "DriftDetected")?.status !== "Unknown" ? m : undefined;
      },
      30_000,
    );
    const metrics = calm.status!.lastMetrics!;
    expect(metrics).toMatchObject({ samples: WINDOW, metric: "accuracy", robustness: 1, verdict: "Healthy", decidedBy: "labels", driftedFeatures: [] });
    expect(metrics.labelledSamples).toBe(LABELLED_BEFORE_CLOSE);
    expect(metrics.accuracy).toBe(seattle.expectedAccuracy);
    // The label-free estimate from the served rows' calibrated probabilities, beside it: within two binomial
    // standard errors of a 100-row window (2·√(0.75·0.25/100) ≈ 0.09, rounded up to 0.1).
    expect(Math.abs(metrics.estimatedAccuracy! - metrics.accuracy!)).toBeLessThanOrEqual(0.1);
    expect(calm.status!.recentWindows!.at(-1)!.estimatedAccuracy).toBe(metrics.estimatedAccuracy);
    expect(metrics.driftShare).toBe(0);
    expect(condition(calm, "DriftDetected")).toMatchObject({ status: "False", reason: "NoDrift", observedGeneration: 1 });
    expect(calm.status!.policy).toMatchObject({ verdict: "Healthy", consecutiveViolations: 0 });
    // The serving reconciler's fields survive the monitoring writes, and vice versa.
    expect(condition(calm, "Ready")?.status).toBe("True");
    // Written by the monitoring reconciler from what the sidecar serves: nothing pinned it.
    expect(calm.status!.servingVersion).toBe("v1");
    // The pipeline's late labels are still taken (they are training data), after the verdict.
    await seattle.sendLateLabels();
  });

  it("reports New York traffic as drift naming the features, judges it by its labels, shows the columns, and records an Event", async () => {
    const ny = await sendWindow(split.newYorkTraffic.slice(0, WINDOW), "new-york");
    const drifted = await waitFor(
      "DriftDetected True",
      async () => {
        const m = await get();
        return condition(m, "DriftDetected")?.status === "True" ? m : undefined;
      },
      30_000,
    );
    const drift = condition(drifted, "DriftDetected")!;
    expect(drift.reason).toBe("DriftAboveThreshold");
    expect(drift.message).toMatch(/features drifted \(share [\d.]+ ≥ policy.maxDriftShare 0.5\)/);
    expect(drifted.status!.lastMetrics!.driftedFeatures!.length).toBeGreaterThanOrEqual(2);
    // Calibrated thresholds (the default): each drifted feature's KS D above the reference's no-drift quantile at the window's rows.
    for (const f of drifted.status!.lastMetrics!.driftedFeatures!)
      expect(drift.message).toMatch(new RegExp(`${f}: ks [\\d.]+ > [\\d.]+ \\(no-drift 99% quantile at ${WINDOW} rows\\)`));
    const last = drifted.status!.lastMetrics!;
    expect(last).toMatchObject({ labelledSamples: LABELLED_BEFORE_CLOSE, accuracy: ny.expectedAccuracy });
    // Drift explains, degradation decides: New York is served about as accurately as Seattle, so the labels say Healthy.
    expect(last).toMatchObject({ verdict: "Healthy", decidedBy: "labels" });
    expect(drift.message).toMatch(/not a violation by itself: decided by labels \(90 labelled rows ≥ 50\)/);
    expect(condition(drifted, "Degraded")).toMatchObject({ status: "False", reason: "Healthy" });
    expect(condition(drifted, "Degraded")!.message).toMatch(/measured but not a violation: decided by labels/);

    const row = await printedColumns();
    expect(row).toMatchObject({ MODEL: "weather", VERSION: "v1" });
    expect(Number(row["DRIFT"])).toBe(last.driftShare);
    const accuracy = row["ACCURACY"];
    // What kubectl prints is the rounded value itself, never 0.8066666666666666.
    expect(accuracy).toBe(String(last.accuracy));
    expect(accuracy!.replace(/^0\.0*/, "").length).toBeLessThanOrEqual(4);

    const events = await waitFor("the drift Event", async () => {
      const res = await kubectl([
        "get",
        "events.events.k8s.io",
        "-n",
        ns.name,
        "--field-selector",
        "reportingController=ballast.dev/operator,reason=DriftAboveThreshold",
        "-o",
        "json",
      ]);
      const items = (JSON.parse(res.stdout) as { items: { type: string; note: string; regarding: { name: string } }[] }).items;
      return items.length > 0 ? items : undefined;
    });
    expect(events[0]).toMatchObject({ type: "Warning", regarding: { name: "weather" } });
    expect(events[0]!.note).toContain("features drifted");
    const metrics = await operator.metrics();
    expect(metrics).toMatch(/controller_runtime_reconcile_total\{controller="monitoring",result="requeue_after"\} [1-9]/);
    // One short name per controller in every metric and log line: serving, monitoring, loop.
    for (const controller of ["serving", "monitoring", "loop"])
      expect(metrics).toMatch(new RegExp(`controller_runtime_reconcile_total\\{controller="${controller}",`));

    // What a dashboard reads of this ModelDeployment: the operator's merged window and state, the same numbers as status.
    const me = { namespace: ns.name, modeldeployment: "weather" };
    const now = await waitFor("the operator's metrics showing the drifted window", async () => {
      const text = await operator.metrics();
      return sampleValue(text, "ballast_modeldeployment_condition", { ...me, type: "DriftDetected", status: "True", reason: "DriftAboveThreshold" }) === 1
        ? text
        : undefined;
    });
    expect(sampleValue(now, "ballast_modeldeployment_window_drift_share_ratio", me)).toBe(last.driftShare);
    expect(sampleValue(now, "ballast_modeldeployment_window_quality", { ...me, metric: "accuracy" })).toBe(last.accuracy);
    expect(sampleValue(now, "ballast_modeldeployment_window_samples", { ...me, kind: "labelled" })).toBe(LABELLED_BEFORE_CLOSE);
    expect(sampleValue(now, "ballast_modeldeployment_policy_threshold", { ...me, rule: "maxDriftShare" })).toBe(0.5);
    expect(sampleValue(now, "ballast_modeldeployment_loop_phase", { ...me, phase: "Stable" })).toBe(1);
    expect(sampleValue(now, "ballast_modeldeployment_loop_phase", { ...me, phase: "Training" })).toBe(0);
    expect(sampleValue(now, "ballast_modeldeployment_serving_version_info", { ...me, version: "v1" })).toBe(1);
    expect(sampleValue(now, "ballast_operator_sidecar_scrapes_total", me)).toBeGreaterThan(0);
    expect(sampleValue(now, "ballast_operator_sidecar_scrape_errors_total", me)).toBe(0);

    // And each serving pod's sidecar, on its monitoring port: its series name the ModelDeployment, not the pod.
    const pods = await kubectlJson<{ items: { status: { podIP: string } }[] }>(["get", "pods", "-n", ns.name, "-l", "ballast.dev/model-deployment=weather"]);
    expect(pods.items.length).toBeGreaterThan(0);
    const sidecar = await (await fetch(`http://${pods.items[0]!.status.podIP}:9090/metrics`)).text();
    expect(
      sampleValue(sidecar, "ballast_model_info", { ...me, model: "weather", version: "v1" }),
      sidecar
        .split("\n")
        .filter((l) => l.startsWith("ballast_model_info"))
        .join("\n"),
    ).toBe(1);
    expect(sampleValue(sidecar, "ballast_sidecar_requests_total", { ...me, route: "infer", code: "200" })).toBeGreaterThan(0);
    expect(sampleValue(sidecar, "ballast_feature_drift_detected", { ...me, version: "v1", feature: drifted.status!.lastMetrics!.driftedFeatures![0]! })).toBe(
      1,
    );
  });

  it("starts no retraining while labels say the drifted traffic is served well; without labels, drift decides and a Job starts", async () => {
    // Every window so far drifted (New York) or not (Seattle), and the labels said Healthy each time.
    expect((await kubectl(["get", "jobs", "-n", ns.name, "-o", "name"])).stdout.trim()).toBe("");
    expect((await get()).status!.loop).toMatchObject({ phase: "Stable", attempt: 0 });
    // The same kind of traffic with no feedback at all: drift is the only evidence left.
    await sendUnlabelled(split.newYorkTraffic.slice(WINDOW, 2 * WINDOW), "unlabelled");
    const training = await waitFor(
      "a retraining Job decided by drift",
      async () => {
        const m = await get();
        return m.status?.lastRetraining ? m : undefined;
      },
      60_000,
    );
    expect(training.status!.lastMetrics).toMatchObject({ labelledSamples: 0, verdict: "Violated", decidedBy: "drift" });
    expect(training.status!.lastRetraining).toMatchObject({ jobName: "weather-retrain-1", fromVersion: "v1" });
    expect(training.status!.lastRetraining!.reason).toMatch(/drift/i);
    expect((await kubectl(["get", "jobs", "-n", ns.name, "-o", "name"])).stdout.trim()).toBe("job.batch/weather-retrain-1");
    // The loop's transition, counted once, and the budget it spent.
    const me = { namespace: ns.name, modeldeployment: "weather" };
    const metrics = await operator.metrics();
    expect(sampleValue(metrics, "ballast_retraining_jobs_started_total", me)).toBe(1);
    expect(sampleValue(metrics, "ballast_modeldeployment_retraining_jobs_in_period", me)).toBe(1);
    // policy.maxRetrainings.count is left at its default, 3 Jobs per 24h.
    expect(sampleValue(metrics, "ballast_modeldeployment_retraining_jobs_allowed_per_period", me)).toBe(3);
    expect(sampleValue(metrics, "ballast_modeldeployment_loop_phase", { ...me, phase: "Training" })).toBe(1);
  });

  it("with a quality bound and no labels, the window is judged on the estimated accuracy, not on its drift", async () => {
    const before = (await get()).status!.lastMetrics!.windowEnd;
    // About a quarter of New York's days lie beyond Seattle's range, where the model extrapolates: the estimate decides
    // only a bound those rows could not flip even if all were wrong (0.73 − 0.27 > 0.3; at 0.5 drift would decide).
    const patch = await kubectl(["patch", "md", "weather", "-n", ns.name, "--type", "merge", "-p", '{"spec":{"policy":{"minAccuracy":0.3}}}']);
    expect(patch.code).toBe(0);
    await sendUnlabelled(split.newYorkTraffic.slice(2 * WINDOW, 3 * WINDOW), "estimated");
    const judged = await waitFor(
      "a window decided by its estimate",
      async () => {
        const m = await get();
        const last = m.status?.lastMetrics;
        return last && last.windowEnd > before && last.decidedBy ? m : undefined;
      },
      60_000,
    );
    const last = judged.status!.lastMetrics!;
    // Every input drifted, yet the estimate (about the 0.7 New York is really served at) is above the bound.
    expect(last).toMatchObject({ labelledSamples: 0, decidedBy: "estimate", verdict: "Healthy" });
    expect(last.driftedFeatures!.length).toBeGreaterThanOrEqual(2);
    expect(last.estimatedAccuracy).toBeGreaterThan(0.5);
    expect(condition(judged, "DriftDetected")!.message).toMatch(
      /not a violation by itself: decided by estimate \(0 labelled rows < 50; estimated from 100 rows/,
    );
  });

  it("with drift.multivariate, Seattle days whose temperatures no longer move together are drift, though no single feature drifted", async () => {
    // Every window so far carried its reconstruction error into status (the CRD keeps the fields).
    expect((await get()).status!.recentWindows!.every((w) => w.reconstructionError !== undefined)).toBe(true);
    const before = (await get()).status!.lastMetrics!.windowEnd;
    const patch = await kubectl([
      "patch",
      "md",
      "weather",
      "-n",
      ns.name,
      "--type",
      "merge",
      "-p",
      JSON.stringify({ spec: { monitoring: { drift: { multivariate: true } }, policy: { triggerOn: "drift" } } }),
    ]);
    expect(patch.code).toBe(0);
    // temp_min moved to another day of the window (stride coprime to 100): each column keeps its values.
    const days = split.seattleTraffic.slice(WINDOW, 2 * WINDOW);
    await sendUnlabelled(
      days.map((d, i) => ({ ...d, temp_min: days[(i * 7 + 31) % WINDOW]!.temp_min })),
      "decorrelated",
    );
    const judged = await waitFor(
      "the decorrelated window judged",
      async () => {
        const m = await get();
        const last = m.status?.lastMetrics;
        return last && last.windowEnd > before && last.verdict ? m : undefined;
      },
      60_000,
    );
    const last = judged.status!.lastMetrics!;
    expect(last).toMatchObject({ driftShare: 0, multivariateDrift: true, verdict: "Violated", decidedBy: "drift" });
    expect(last.reconstructionError).toBeGreaterThan(last.reconstructionErrorUpper!);
    expect(condition(judged, "DriftDetected")).toMatchObject({ status: "True", reason: "DriftAboveThreshold" });
    expect(condition(judged, "DriftDetected")!.message).toMatch(
      /inputs drifted together; 0 of 4 features drifted.*multivariate drift: mean PCA reconstruction error/,
    );
  });
});
