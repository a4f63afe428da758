// Given the local cluster, the operator as its own ServiceAccount and a penguin sex classifier trained on Adelie
// birds (vega-datasets), a user watches the closed loop on real data: Gentoo traffic degrades the
// model, the operator starts a retraining Job on the GPU node, the candidate passes the gate, is promoted and
// observed, and live accuracy recovers. The operator is killed while training and while observing, and resumes
// without a second Job or a second promotion.
// Then a person approves a model trained on shuffled labels: it regresses live and is rolled back. Then a Job
// that cannot run is a failed attempt with its reason.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { V1Deployment, V1Job, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ModelDeploymentStatus } from "../../../src/api/index.js";
import { PENGUIN_FEATURES, PENGUIN_LABEL, loadPenguins, penguinsCsv, splitPenguins, type Penguin } from "../../../src/demo/penguins-data.js";
import { onlyVersionServes } from "../../../src/demo/rollout.js";
import { waitForService } from "../../../src/demo/traffic.js";
import { kubectl, waitFor } from "../../support/cluster.js";
import { sampleValue } from "../../support/prometheus-text.js";
import { kubectlJson, trainInto } from "./operator-process.js";
import { penguinSuite, deployPenguins, operatorEvents, PENGUIN_GPU_SECONDS, PENGUIN_WINDOW, sendPenguins } from "./penguin-loop.js";

const WINDOW = PENGUIN_WINDOW;
const MD_NAME = "penguins";

interface MD {
  metadata: { generation: number };
  spec: Record<string, unknown>;
  status?: ModelDeploymentStatus;
}
const condition = (md: MD, type: string) => md.status?.conditions?.find((c) => c.type === type);

describe("ballast operator: the closed loop on real data", () => {
  let serviceUrl: string;
  const split = splitPenguins(loadPenguins(), 2 * WINDOW);
  const suite = penguinSuite("op-loop", split.training);
  const gentoo = split.gentoo;
  const get = () => kubectlJson<MD>(["get", "md", MD_NAME, "-n", suite.namespace]);
  const send = (rows: readonly Penguin[], idPrefix: string) => sendPenguins(serviceUrl, rows, idPrefix);
  /** Waits for the ModelDeployment to satisfy `test`; a timeout shows where the loop and the policy stood. */
  const until = async (what: string, test: (m: MD) => boolean, timeoutMs = 120_000) => {
    let last: MD | undefined;
    try {
      return await waitFor(
        what,
        async () => {
          last = await get();
          return test(last) ? last : undefined;
        },
        timeoutMs,
        500,
      );
    } catch (err) {
      const s = last?.status;
      throw new Error(
        `${(err as Error).message}\nloop: ${JSON.stringify(s?.loop)}\npolicy: ${JSON.stringify(s?.policy)}\nlastMetrics: ${JSON.stringify(s?.lastMetrics)}\nlastRetraining: ${JSON.stringify(s?.lastRetraining)}\nconditions: ${JSON.stringify(s?.conditions?.map((c) => [c.type, c.status, c.reason, c.message]))}`,
        { cause: err },
      );
    }
  };
  const eventReasons = () => operatorEvents(suite.namespace, MD_NAME);
  const jobs = async () =>
    (await kubectlJson<{ items: V1Job[] }>(["get", "jobs", "-n", suite.namespace, "-l", `ballast.dev/model-deployment=${MD_NAME}`])).items;
  /** Until traffic sent now reaches `version` only: a label for an answer from a draining pod would reach the new pod, which never saw the request. */
  const onlyServes = (version: string) =>
    waitFor(`only ${version} to serve`, async () => {
      const pods = await kubectlJson<{ items: V1Pod[] }>([
        "get",
        "pods",
        "-n",
        suite.namespace,
        "-l",
        `ballast.dev/model-deployment=${MD_NAME},app.kubernetes.io/component=serving`,
      ]);
      return onlyVersionServes(pods.items, version) || undefined;
    });

  it("degradation → a Job on the GPU node → gate → promotion → observation → accuracy recovered", async () => {
    // The latency rule has its own tests (test/unit/operator/loop-state-machine.test.ts); here a wider trial may win selection and be slower per row.
    serviceUrl = await deployPenguins(suite.namespace, MD_NAME, { observationWindows: 2, minImprovement: 0.05, maxLatencyRatio: 3 });

    // Familiar birds: a healthy window, no Job.
    const calm = await send(split.familiar.slice(0, WINDOW), "calm");
    expect(calm.feedbackAccepted).toBe(WINDOW);
    const healthy = await until("a healthy window", (m) => m.status?.lastMetrics?.verdict === "Healthy");
    expect(healthy.status).toMatchObject({ servingVersion: "v1", loop: { phase: "Stable", attempt: 0 } });
    const row = (await kubectl(["get", "md", MD_NAME, "-n", suite.namespace])).stdout.split("\n");
    expect(row[0]).toMatch(/MODEL\s+VERSION\s+READY\s+PHASE\s+DRIFT\s+ACCURACY/);
    expect(row[1]).toMatch(new RegExp(`^${MD_NAME}\\s+penguin-sex\\s+v1\\s+True\\s+Stable\\s`));
    expect(await jobs()).toHaveLength(0);

    // Gentoo birds: violating windows (two in a row trigger) → a retraining Job.
    const degraded = await send(gentoo.slice(0, 3 * WINDOW), "gentoo");
    expect(degraded.correct / degraded.rows).toBeLessThan(0.7);
    const training = await until("the loop to start training", (m) => m.status?.loop?.phase === "Training", 60_000);
    expect(condition(training, "Retraining")).toMatchObject({ status: "True", reason: "RetrainingStarted" });
    expect(training.status!.lastRetraining).toMatchObject({ jobName: `${MD_NAME}-retrain-1`, phase: "Running", fromVersion: "v1" });

    // The operator dies mid-training and comes back: same Job, no twin.
    await suite.restartOperator();

    const observing = await until(
      "the candidate to be promoted",
      (m) => m.status?.loop?.phase === "Observing" || (m.status?.loop?.phase === "Stable" && (m.status?.loop?.attempt ?? 0) > 0),
      240_000,
    );
    expect((await jobs()).map((j) => j.metadata!.name)).toEqual([`${MD_NAME}-retrain-1`]);
    const pods = await kubectlJson<{ items: V1Pod[] }>(["get", "pods", "-n", suite.namespace, "-l", `batch.kubernetes.io/job-name=${MD_NAME}-retrain-1`]);
    expect(pods.items[0]!.spec!.nodeName).toBe("ballast-gpu-0");
    // The GPU budget (1800 GPU-seconds a day, one GPU): the Job may run 1800 s, not activeDeadlineSeconds' 3600.
    expect((await jobs())[0]!.spec!.activeDeadlineSeconds).toBe(PENGUIN_GPU_SECONDS);
    const last = observing.status!.lastRetraining!;
    expect(last.gate?.passed, `the gate: ${JSON.stringify(last.gate)}`).toBe(true);
    // Its GPU-seconds: run time on its one GPU, counted against the budget.
    const ranSeconds = (Date.parse(last.completionTime!) - Date.parse(last.startTime!)) / 1000;
    expect(last.gpuSeconds).toBe(Math.round(ranSeconds));
    expect(observing.status!.loop!.recentGpuSeconds).toEqual([{ start: last.startTime, gpuSeconds: last.gpuSeconds }]);
    expect(last).toMatchObject({ phase: "Succeeded", gate: { passed: true, metric: "accuracy" } });
    expect(last.gate!.recent.rows).toBeGreaterThan(0);
    expect(last.candidateMetric!).toBeGreaterThan(last.servingMetric! + 0.05);
    const candidate = last.candidateVersion!;
    expect(observing.status).toMatchObject({ targetVersion: candidate, previousVersion: "v1", servingVersion: candidate });
    const dep = await kubectlJson<V1Deployment>(["get", "deployment", `${MD_NAME}-serving`, "-n", suite.namespace]);
    expect(dep.spec!.template.spec!.containers[0]!.args).toEqual(expect.arrayContaining(["--version", candidate]));
    expect(observing.status!.history!.map((h) => h.event)).toEqual(["Retrained", "Promoted"]);

    // The operator dies again while observing: it resumes from status, without a second promotion.
    await suite.restartOperator();

    // The rest of the Gentoo birds: the promoted version serves them well, and the promotion becomes final.
    await onlyServes(candidate);
    await waitForService(`${serviceUrl}/v1/sidecar/ready`, 30_000);
    const recovered = await send(gentoo.slice(3 * WINDOW, 5 * WINDOW), "gentoo-after");
    expect(recovered.correct / recovered.rows).toBeGreaterThanOrEqual(0.75);
    const final = await until("the promotion to be final", (m) => m.status?.loop?.phase === "Stable" && (m.status?.loop?.attempt ?? 0) === 1, 60_000);
    expect(final.status!.lastMetrics!.accuracy!).toBeGreaterThanOrEqual(0.75);
    expect(final.status!.loop).toMatchObject({ consecutiveFailures: 0, observedWindows: 2 });
    expect(final.status!.history!.filter((h) => h.event === "Promoted")).toHaveLength(1);
    const reasons = (await eventReasons()).map((e) => e.reason);
    for (const r of ["RetrainingStarted", "CandidatePassed", "Promoted", "ObservationPassed"]) expect(reasons).toContain(r);
  });

  it("manual mode: a person approves a model trained on shuffled labels; it regresses live and is rolled back", async () => {
    const before = await get();
    const good = before.status!.servingVersion!;
    // A version with the labels shuffled: same inputs, no signal.
    const shuffled = split.training.map((b, i, all) => ({ ...b, sex: all[(i * 7 + 3) % all.length]!.sex }));
    const csv = join(suite.tmp, "shuffled.csv");
    writeFileSync(csv, penguinsCsv(shuffled));
    trainInto(suite.storeDir, csv, [
      "--model",
      "penguin-sex",
      "--version",
      "shuffled",
      "--label",
      PENGUIN_LABEL,
      "--features",
      PENGUIN_FEATURES.join(","),
      "--epochs",
      "5",
    ]);
    await kubectl([
      "patch",
      `md/${MD_NAME}`,
      "-n",
      suite.namespace,
      "--type",
      "merge",
      "-p",
      JSON.stringify({ spec: { promotion: { mode: "manual", approvedVersion: "shuffled" } } }),
    ]);
    await until("the approved version to be observed", (m) => m.status?.loop?.phase === "Observing" && m.status?.servingVersion === "shuffled", 120_000);
    await onlyServes("shuffled");
    await waitForService(`${serviceUrl}/v1/sidecar/ready`, 30_000);
    await send([...split.familiar, ...gentoo].slice(0, WINDOW), "after-approval");
    const rolledBack = await until(
      "the rollback",
      (m) => m.status?.loop?.phase === "Stable" && m.status?.servingVersion === good && (m.status?.history ?? []).some((h) => h.event === "RolledBack"),
      120_000,
    );
    expect(rolledBack.status!.history!.at(-1)).toMatchObject({ event: "RolledBack", version: good, previousVersion: "shuffled" });
    expect(rolledBack.status!.loop).toMatchObject({ consecutiveFailures: 1, approvalHandled: "shuffled" });
    const warnings = (await eventReasons()).filter((e) => e.type === "Warning").map((e) => e.reason);
    expect(warnings).toEqual(expect.arrayContaining(["LiveRegression", "RolledBack"]));
    // The operator restarted last while observing the first promotion: since then, this promotion and its rollback, once each.
    const metrics = await suite.operator.metrics();
    const me = { namespace: suite.namespace, modeldeployment: MD_NAME };
    expect(sampleValue(metrics, "ballast_promotions_total", me)).toBe(1);
    expect(sampleValue(metrics, "ballast_rollbacks_total", me)).toBe(1);
    expect(sampleValue(metrics, "ballast_rejections_total", me)).toBe(0);
  });

  it("a Job that cannot run is a failed attempt: Failed with its reason, a Warning, a longer cooldown", async () => {
    // A stricter bar the current model misses, and a retraining command that fails at once.
    await kubectl([
      "patch",
      `md/${MD_NAME}`,
      "-n",
      suite.namespace,
      "--type",
      "merge",
      "-p",
      JSON.stringify({ spec: { policy: { minAccuracy: 0.999 }, promotion: { mode: "auto", approvedVersion: null }, retraining: { args: ["--epochs", "0"] } } }),
    ]);
    // The new policy rolls the pods (their monitoring config changed): send once the replaced ones take no connections.
    await until("the spec change to be reconciled", (m) => m.status?.observedGeneration === m.metadata.generation, 60_000);
    const rolled = await kubectl(["rollout", "status", `deployment/${MD_NAME}-serving`, "-n", suite.namespace, "--timeout=120s"]);
    expect(rolled.code, rolled.stderr).toBe(0);
    await waitForService(`${serviceUrl}/v1/sidecar/ready`, 30_000);
    await until(
      "the back-off after the rollback to pass",
      (m) => !m.status?.loop?.backoffUntil || new Date(m.status.loop.backoffUntil).getTime() < Date.now(),
      60_000,
    );
    await send([...split.familiar, ...gentoo].slice(WINDOW, 3 * WINDOW + 5), "strict");
    const spentBefore = (await get()).status!.loop!.recentGpuSeconds!.reduce((sum, e) => sum + e.gpuSeconds, 0);
    const failed = await until("the failed attempt", (m) => m.status?.lastRetraining?.phase === "Failed", 90_000);
    // What the first Job left of the GPU budget bounds the second.
    expect((await jobs()).find((j) => j.metadata!.name === `${MD_NAME}-retrain-2`)!.spec!.activeDeadlineSeconds).toBe(PENGUIN_GPU_SECONDS - spentBefore);
    expect(failed.status!.lastRetraining).toMatchObject({ jobName: `${MD_NAME}-retrain-2`, reason: "BackoffLimitExceeded" });
    expect(failed.status!.lastRetraining!.message).toMatch(/epochs/);
    expect(failed.status!.loop).toMatchObject({ phase: "Stable", consecutiveFailures: 2 });
    expect(new Date(failed.status!.loop!.backoffUntil!).getTime()).toBeGreaterThan(Date.now());
    expect(condition(failed, "Retraining")).toMatchObject({ status: "False", reason: "RetrainingFailed" });
    expect((await eventReasons()).some((e) => e.type === "Warning" && e.reason === "RetrainingFailed")).toBe(true);
    // Counted once each: the Job started and failed, with how long it ran.
    const metrics = await suite.operator.metrics();
    const me = { namespace: suite.namespace, modeldeployment: MD_NAME };
    expect(sampleValue(metrics, "ballast_retraining_jobs_started_total", me)).toBe(1);
    expect(sampleValue(metrics, "ballast_retraining_jobs_failed_total", me)).toBe(1);
    expect(sampleValue(metrics, "ballast_retraining_job_duration_seconds_count", { ...me, result: "failed" })).toBe(1);
    const ran = (Date.parse(failed.status!.lastRetraining!.completionTime!) - Date.parse(failed.status!.lastRetraining!.startTime!)) / 1000;
    expect(sampleValue(metrics, "ballast_retraining_job_duration_seconds_sum", { ...me, result: "failed" })).toBe(ran);
    expect(sampleValue(metrics, "ballast_modeldeployment_condition", { ...me, type: "Retraining", status: "False", reason: "RetrainingFailed" })).toBe(1);
    expect(sampleValue(metrics, "ballast_retraining_gpu_seconds_total", me)).toBe(failed.status!.lastRetraining!.gpuSeconds);
    expect(sampleValue(metrics, "ballast_modeldeployment_retraining_gpu_seconds_in_period", me)).toBe(spentBefore + failed.status!.lastRetraining!.gpuSeconds!);
    expect(sampleValue(metrics, "ballast_modeldeployment_retraining_gpu_seconds_allowed_per_period", me)).toBe(PENGUIN_GPU_SECONDS);
  }, 240_000);
});
