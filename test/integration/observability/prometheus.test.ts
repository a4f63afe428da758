// Given the local cluster, the operator and a real Prometheus that discovers the serving pods through the API server
// with the shipped PodMonitor's rules and loads the shipped alert rules, a user serves a penguin sex classifier
// (trained on Adelie birds) and sends traffic with labels: calm (familiar birds), then degraded (Gentoo birds).
// They see the degradation alert go pending, then firing, during the degraded traffic and never during the calm;
// and every query of the shipped Grafana dashboard and alert rules answers with series for their ModelDeployment:
// no empty panel, no typo in a metric name, no wrong label.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Service } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { ModelDeploymentStatus } from "../../../src/api/index.js";
import { PENGUIN_FEATURES, PENGUIN_LABEL, loadPenguins, penguinsCsv, splitPenguins, type Penguin } from "../../../src/demo/penguins-data.js";
import { sendTrafficWithFeedback, waitForService } from "../../../src/demo/traffic.js";
import { PortAllocator } from "../../../src/devcluster/ports.js";
import { stopProcess } from "../../../src/devcluster/processes.js";
import { locatePrometheusTool, SHIPPED_RULES_FILE, startPrometheus, type RunningPrometheus } from "../../../src/devcluster/prometheus.js";
import { readState } from "../../../src/devcluster/state.js";
import { KubeClient } from "../../../src/kube/client.js";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import { PrometheusApi } from "../../support/prometheus-api.js";
import { dashboardExpressions, dashboardVariableQueries, ruleExpressions, substituteDashboardVariables } from "../../support/promql-sources.js";
import {
  applyYaml,
  createLocalClaim,
  installCrdAndRbac,
  kubectlJson,
  operatorKubeconfig,
  startOperator,
  trainInto,
  type OperatorProcess,
} from "../operator/operator-process.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const DASHBOARD = join(repoRoot, "charts/ballast/dashboards/ballast.json");
const DEGRADATION_ALERT = "BallastModelDegraded";
/** The shipped `for:` is minutes; here it is shortened so pending → firing shows within the test (promtool checks the shipped file). */
const ALERT_FOR = "8s";
const INTERVAL_S = 2;
const WINDOW = 20;
const MD_NAME = "penguins";

describe("a real Prometheus scraping the local cluster: the shipped dashboard and alert rules", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let operator: OperatorProcess;
  let prometheus: RunningPrometheus;
  let api: PrometheusApi;
  let serviceUrl: string;
  let tmp: string;
  const split = splitPenguins(loadPenguins(), 2 * WINDOW);
  const send = (rows: readonly Penguin[], idPrefix: string) =>
    sendTrafficWithFeedback({
      serviceUrl,
      feedbackUrl: serviceUrl,
      model: "penguin-sex",
      days: rows,
      rowsPerRequest: 5,
      idPrefix,
      features: PENGUIN_FEATURES,
      label: PENGUIN_LABEL,
      feedbackPerRequest: true,
    });
  const alertStates = async () =>
    (await api.query(`ALERTS{alertname="${DEGRADATION_ALERT}", namespace="${ns.name}", modeldeployment="${MD_NAME}"}`)).map((s) => s.metric.alertstate);
  /**
   * For an expression that is rightly empty most of the time (an alert's condition, an annotation's event): it
   * parses, and each metric it reads has series — for this ModelDeployment where the metric is labelled by one.
   */
  const selectorProblems = async (where: string, expr: string): Promise<string[]> => {
    const parsed = await api.query(expr).catch((err: Error) => err);
    if (parsed instanceof Error) return [`${where}: ${parsed.message}`];
    const problems: string[] = [];
    for (const selector of await api.selectors(expr)) {
      const series = await api.series(selector);
      const labelled = series.filter((s) => "modeldeployment" in s);
      if (series.length === 0) problems.push(`${where}: ${selector} matches no series`);
      else if (labelled.length > 0 && !labelled.some((s) => s.modeldeployment === MD_NAME && s.namespace === ns.name))
        problems.push(`${where}: ${selector} has no series for ${ns.name}/${MD_NAME}`);
    }
    return problems;
  };
  const verdict = async () => (await kubectlJson<{ status?: ModelDeploymentStatus }>(["get", "md", MD_NAME, "-n", ns.name])).status?.lastMetrics?.verdict;

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("obs-prom");
    const claimDir = await createLocalClaim(ns.name, "models");
    const trainingCsv = join(claimDir, "penguins-train.csv");
    writeFileSync(trainingCsv, penguinsCsv(split.training));
    trainInto(join(claimDir, "store"), trainingCsv, [
      ...["--model", "penguin-sex", "--version", "v1", "--label", PENGUIN_LABEL, "--features", PENGUIN_FEATURES.join(",")],
      ...["--epochs", "60", "--seed", "3", "--max-trials", "1"],
    ]);
    tmp = mkdtempSync(join(tmpdir(), "obs-prom-"));
    operator = await startOperator({ kubeconfig: operatorKubeconfig(tmp), args: ["--namespaces", ns.name] });

    const clusterDir = inject("clusterDir");
    if (!clusterDir) throw new Error("this test runs Prometheus beside a `ballast dev` cluster (clusterDir is unknown)");
    const admin = await KubeClient.load(inject("kubeconfig"));
    try {
      prometheus = await startPrometheus({
        dir: clusterDir,
        server: readState(clusterDir)!.server,
        admin,
        port: await new PortAllocator().allocate(),
        binary: locatePrometheusTool("prometheus"),
        ruleSources: [SHIPPED_RULES_FILE],
        intervalSeconds: INTERVAL_S,
        // The operator runs here as a local process, not a pod: the ServiceMonitor's discovery has nothing to find,
        // so it is a static target with the labels that ServiceMonitor gives its target.
        staticTargets: [
          {
            job: "ballast-operator-local-process",
            target: `127.0.0.1:${operator.port}`,
            labels: { job: "ballast-operator-metrics", namespace: "ballast-system", service: "ballast-operator-metrics", endpoint: "metrics" },
          },
        ],
        alertForOverrides: { [DEGRADATION_ALERT]: ALERT_FOR },
      });
    } finally {
      await admin.close();
    }
    api = new PrometheusApi(prometheus.url);

    await applyYaml(
      stringify({
        apiVersion: "ballast.dev/v1alpha1",
        kind: "ModelDeployment",
        metadata: { name: MD_NAME, namespace: ns.name },
        spec: {
          model: { name: "penguin-sex", storageUri: "pvc://models/store" },
          serving: { replicas: 1, port: 8080 },
          monitoring: {
            task: "classification",
            labelField: PENGUIN_LABEL,
            features: PENGUIN_FEATURES.map((f) => ({ name: f, type: "numeric" })),
            window: { size: WINDOW },
            drift: { method: "ks" },
            scrapeInterval: "1s",
          },
          // Calm then degraded, judged by labels; no retraining, so the degraded version keeps serving while we look.
          policy: {
            minAccuracy: 0.75,
            minSamples: 15,
            minLabelledSamples: 15,
            consecutiveWindows: 2,
            minStability: 0,
            maxRetrainings: { count: 0, gpuSeconds: 3600 },
          },
        },
      }),
    );
    expect((await kubectl(["wait", "--for=condition=Ready", `md/${MD_NAME}`, "-n", ns.name, "--timeout=120s"])).stdout).toContain("condition met");
    const svc = await kubectlJson<V1Service>(["get", "service", MD_NAME, "-n", ns.name]);
    serviceUrl = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}`;
    await waitForService(`${serviceUrl}/v1/sidecar/ready`, 30_000);
  });

  afterAll(async () => {
    if (prometheus) await stopProcess(prometheus.process.pid);
    const clusterDir = inject("clusterDir");
    if (clusterDir) rmSync(join(clusterDir, "prometheus"), { recursive: true, force: true });
    if (!ns) return;
    await kubectl(["delete", "md", "--all", "-n", ns.name, "--wait=true", "--timeout=60s"]);
    if (operator) expect(await operator.stop()).toBe(0);
    await ns.remove();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("discovers the serving pod through the API server and labels it with its ModelDeployment", async () => {
    const up = await waitFor(
      "Prometheus to scrape the serving pod",
      async () => (await api.query(`up{namespace="${ns.name}", modeldeployment="${MD_NAME}"} == 1`))[0],
      60_000,
      1000,
    );
    expect(up.metric).toMatchObject({ job: "ballast-system/ballast-serving", container: "sidecar", endpoint: "monitoring" });
    expect(up.metric.pod).toMatch(new RegExp(`^${MD_NAME}-serving-`));
    const operatorUp = await waitFor(
      "Prometheus to scrape the operator",
      async () => (await api.query('up{job="ballast-operator-metrics"} == 1'))[0],
      30_000,
      1000,
    );
    expect(operatorUp.metric.namespace).toBe("ballast-system");
  });

  it("discovers as its own user, which may only list and watch pods (no Secrets, no writes)", async () => {
    const asPrometheus = ["--kubeconfig", join(inject("clusterDir")!, "prometheus", "prometheus.kubeconfig")];
    const can = async (...args: string[]) => (await kubectl(["auth", "can-i", ...args, ...asPrometheus])).stdout.trim();
    expect(await can("watch", "pods", "--all-namespaces")).toBe("yes");
    expect(await can("list", "pods", "--all-namespaces")).toBe("yes");
    expect(await can("get", "secrets", "-n", ns.name)).toBe("no");
    expect(await can("create", "pods", "-n", ns.name)).toBe("no");
    expect(await can("list", "configmaps", "-n", ns.name)).toBe("no");
    expect(await can("list", "services", "-n", ns.name)).toBe("no");
  });

  it("calm traffic: healthy windows and no degradation alert, pending or firing", async () => {
    await send(split.familiar.slice(0, 2 * WINDOW), "calm");
    await waitFor("a healthy window", async () => (await verdict()) === "Healthy", 60_000, 500);
    await waitFor(
      "Prometheus to scrape the calm window's accuracy",
      async () => (await api.query(`ballast_model_quality{namespace="${ns.name}", modeldeployment="${MD_NAME}", metric="accuracy"}`)).length > 0,
      30_000,
      1000,
    );
    // Longer than the alert's `for:` plus two evaluations: a pending alert would have turned firing by now.
    const seen = new Set<string>();
    const until = Date.now() + 3 * INTERVAL_S * 1000 + Number.parseInt(ALERT_FOR, 10) * 1000;
    while (Date.now() < until) {
      for (const s of await alertStates()) seen.add(s!);
      await new Promise((r) => setTimeout(r, 1000));
    }
    expect([...seen]).toEqual([]);
  });

  it("degraded traffic: the degradation alert goes pending, then firing", async () => {
    const degraded = await send(split.gentoo.slice(0, 2 * WINDOW), "gentoo");
    expect(degraded.correct / degraded.rows).toBeLessThan(0.75);
    const states: string[] = [];
    await waitFor(
      `${DEGRADATION_ALERT} to fire`,
      async () => {
        const now = await alertStates();
        for (const s of now) if (states.at(-1) !== s) states.push(s!);
        return now.includes("firing");
      },
      90_000,
      1000,
    );
    expect(states).toEqual(["pending", "firing"]);
    // The operator judged the same windows the alert did.
    await waitFor("the operator's Violated verdict", async () => (await verdict()) === "Violated", 30_000, 500);
  });

  it("every dashboard panel query returns series for the ModelDeployment; every annotation query parses and reads metrics that exist", async () => {
    const values = { namespace: ns.name, modeldeployment: MD_NAME, datasource: "prometheus" };
    const problems: string[] = [];
    const queries = dashboardExpressions(DASHBOARD);
    expect(queries.filter((q) => q.kind === "panel").length).toBeGreaterThan(0);
    for (const q of queries) {
      const expr = substituteDashboardVariables(q.expr, values, `${4 * INTERVAL_S}s`);
      if (q.kind === "annotation") {
        problems.push(...(await selectorProblems(q.where, expr)));
        continue;
      }
      const result = await api.query(expr).catch((err: Error) => err);
      if (result instanceof Error) problems.push(`${q.where}: ${result.message}`);
      else if (result.length === 0) problems.push(`${q.where}: no series for ${expr}`);
    }
    expect(problems).toEqual([]);
  });

  it("the dashboard's namespace and ModelDeployment pickers offer this ModelDeployment", async () => {
    const values = { namespace: ns.name, modeldeployment: MD_NAME };
    for (const v of dashboardVariableQueries(DASHBOARD)) {
      const offered = await api.labelValues(v.label, substituteDashboardVariables(v.selector, values, "1m"));
      if (v.label in values) expect(offered, `variable ${v.name}`).toContain(values[v.label as keyof typeof values]);
      else expect(offered.length, `variable ${v.name} offers nothing`).toBeGreaterThan(0);
    }
  });

  it("every alerting and recording rule parses and each metric it reads has series, for this ModelDeployment where labelled so", async () => {
    const rules = ruleExpressions(SHIPPED_RULES_FILE);
    expect(rules.map((r) => r.alert)).toContain(DEGRADATION_ALERT);
    const problems: string[] = [];
    for (const rule of rules) problems.push(...(await selectorProblems(rule.where, rule.expr)));
    expect(problems).toEqual([]);
  });
});
