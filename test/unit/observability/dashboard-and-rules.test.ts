// The shipped Grafana dashboard and Prometheus alert rules, as files: a current Grafana schema with the data source
// and the ModelDeployment as variables, a query in every panel, only metric names the processes register, and an
// alert for each situation issue 14 names with its runbook. (The queries' results are checked against a real
// Prometheus by the observability integration test.)
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { metricCatalog, seriesNames } from "./metric-catalog.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;

interface Target {
  expr: string;
  refId: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Target[];
}
interface Variable {
  name: string;
  type: string;
  query: string | { query: string };
  datasource?: { type: string; uid: string };
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: Variable[] };
  annotations: { list: { name: string; expr?: string; datasource?: { uid: string } }[] };
  panels: Panel[];
}
interface Rule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: string };
  annotations: Record<string, string>;
}

const dashboard = JSON.parse(readFileSync(`${repoRoot}charts/ballast/dashboards/ballast.json`, "utf8")) as Dashboard;
const rules = (
  parse(readFileSync(`${repoRoot}charts/ballast/rules/ballast-rules.yaml`, "utf8")) as { groups: { name: string; rules: Rule[] }[] }
).groups.flatMap((g) => g.rules);
const runbooks = readFileSync(`${repoRoot}docs/runbooks.md`, "utf8");
const queryPanels = dashboard.panels.filter((p) => p.type !== "row");
const dashboardExprs = [
  ...queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
  ...dashboard.annotations.list.flatMap((a) => (a.expr ? [a.expr] : [])),
];

/** Metric names a PromQL expression reads (Ballast's and controller-runtime's prefixes; label names have none). */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:ballast|controller_runtime|workqueue)_[a-z0-9_]+)\b/g)].map((m) => m[1]!);
}

/** Each `metric{...}` selector in an expression, with its matchers. */
function selectorsIn(expr: string): { metric: string; matchers: string }[] {
  return [...expr.matchAll(/\b(ballast_[a-z0-9_]+)\{([^}]*)\}/g)].map((m) => ({ metric: m[1]!, matchers: m[2]! }));
}

/** The markdown section under `## <heading>`, up to the next `## `. */
function section(doc: string, heading: string): string | undefined {
  const start = doc.indexOf(`\n## ${heading}\n`);
  if (start < 0) return undefined;
  const end = doc.indexOf("\n## ", start + 1);
  return doc.slice(start, end < 0 ? undefined : end);
}

let registered: Set<string>;
beforeAll(async () => {
  registered = seriesNames(await metricCatalog());
});

describe("charts/ballast/dashboards/ballast.json", () => {
  it("is a current Grafana dashboard: schemaVersion ≥ 39, a uid, unique panel ids", () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("takes the data source as a variable and offers namespace and ModelDeployment variables read from Ballast's metrics", () => {
    const vars = Object.fromEntries(dashboard.templating.list.map((v) => [v.name, v]));
    expect(vars.datasource).toMatchObject({ type: "datasource", query: "prometheus" });
    for (const name of ["namespace", "modeldeployment"]) {
      expect(vars[name]).toMatchObject({ type: "query", datasource: { uid: "${datasource}" } });
      const query = typeof vars[name]!.query === "string" ? vars[name]!.query : vars[name]!.query.query;
      expect(query).toMatch(new RegExp(`^label_values\\(ballast_[a-z_]+.*, ${name}\\)$`));
    }
  });

  it("every panel has a query, on the ${datasource} variable", () => {
    expect(queryPanels.length).toBeGreaterThanOrEqual(12);
    for (const p of queryPanels) {
      expect({ panel: p.title, datasource: p.datasource?.uid }).toEqual({ panel: p.title, datasource: "${datasource}" });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets!) {
        expect(t.expr.trim(), p.title).not.toBe("");
        expect(t.datasource.uid).toBe("${datasource}");
      }
      expect(p.description, p.title).toBeTruthy();
    }
  });

  it("shows what issue 14 asks for: quality vs threshold, drift and per-feature drift, traffic, versions, loop phase, Jobs and budget", () => {
    const reads = (metric: string) => queryPanels.filter((p) => p.targets!.some((t) => t.expr.includes(metric))).map((p) => p.title);
    expect(reads("ballast_modeldeployment_window_quality")).toHaveLength(1);
    expect(reads('rule=~"minAccuracy|maxError"')).toEqual(reads("ballast_modeldeployment_window_quality"));
    expect(reads("ballast_modeldeployment_window_drift_share_ratio")).toHaveLength(1);
    expect(queryPanels.find((p) => p.targets!.some((t) => t.expr.includes("ballast_feature_drift_detected")))?.title).toMatch(/heat map/);
    for (const m of [
      "ballast_sidecar_requests_total",
      "ballast_sidecar_request_duration_seconds_bucket",
      "ballast_sidecar_upstream_duration_seconds_bucket",
      "ballast_modeldeployment_serving_version_info",
      "ballast_modeldeployment_loop_phase",
      "ballast_retraining_jobs_started_total",
      "ballast_retraining_jobs_failed_total",
      "ballast_modeldeployment_retraining_jobs_in_period",
      "ballast_modeldeployment_retraining_jobs_allowed_per_period",
    ])
      expect(reads(m), m).not.toHaveLength(0);
    const annotations = dashboard.annotations.list.filter((a) => a.expr);
    expect(annotations.map((a) => [a.name, metricsIn(a.expr!)])).toEqual([
      ["Promotions", ["ballast_promotions_total"]],
      ["Rollbacks", ["ballast_rollbacks_total"]],
    ]);
  });

  it("queries only metrics the operator and the sidecar register, each for the chosen namespace and ModelDeployment", () => {
    for (const expr of dashboardExprs) {
      expect(metricsIn(expr).length, expr).toBeGreaterThan(0);
      for (const metric of metricsIn(expr)) expect({ metric, registered: registered.has(metric) }).toEqual({ metric, registered: true });
      for (const s of selectorsIn(expr)) {
        expect(s.matchers, `${s.metric} in ${expr}`).toContain('namespace="$namespace"');
        expect(s.matchers, `${s.metric} in ${expr}`).toContain('modeldeployment="$modeldeployment"');
      }
    }
  });

  it("lays panels out without overlaps on Grafana's 24-column grid", () => {
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          expect(cells.has(`${x},${y}`), `${p.title} overlaps at ${x},${y}`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });
});

describe("charts/ballast/rules/ballast-rules.yaml", () => {
  it("alerts on each situation issue 14 names", () => {
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        "BallastModelDegraded",
        "BallastDriftWithoutLabels",
        "BallastRetrainingFailed",
        "BallastLoopHalted",
        "BallastRollbackHappened",
        "BallastRetrainingBudgetExhausted",
        "BallastSidecarScrapeFailing",
        "BallastFeedbackLogNearBound",
      ]),
    );
    expect(new Set(rules.map((r) => r.alert)).size).toBe(rules.length);
  });

  it("every alert has a severity, a for: duration, a summary, a description and a runbook_url into docs/runbooks.md", () => {
    for (const r of rules) {
      expect(["critical", "warning", "info"], r.alert).toContain(r.labels.severity);
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(r.annotations.summary, r.alert).toContain("{{ $labels.modeldeployment }}");
      expect(r.annotations.description, r.alert).toBeTruthy();
      expect(r.annotations.runbook_url).toBe(`https://github.com/ballast-dev/ballast/blob/main/docs/runbooks.md#${r.alert.toLowerCase()}`);
    }
  });

  it("reads only registered metrics and keeps the namespace and modeldeployment labels its annotations use", () => {
    for (const r of rules) {
      expect(metricsIn(r.expr).length, r.alert).toBeGreaterThan(0);
      for (const metric of metricsIn(r.expr))
        expect({ alert: r.alert, metric, registered: registered.has(metric) }).toEqual({ alert: r.alert, metric, registered: true });
      // Every aggregation keeps the two labels the summary and the runbook's commands need.
      for (const by of r.expr.matchAll(/\bby \(([^)]*)\)/g)) expect(by[1], r.alert).toMatch(/^namespace, modeldeployment\b/);
    }
  });
});

describe("docs/runbooks.md", () => {
  it("has a section per alert: meaning, impact, diagnosis with kubectl get md, ballast history and kubectl logs, mitigation", () => {
    for (const r of rules) {
      const text = section(runbooks, r.alert);
      expect(text, `## ${r.alert}`).toBeDefined();
      for (const part of ["**Meaning**", "**Impact**", "**Diagnosis**", "**Mitigation**"]) expect(text, `${r.alert}: ${part}`).toContain(part);
      for (const command of ["kubectl get md", "ballast history", "kubectl logs"]) expect(text, `${r.alert}: ${command}`).toContain(command);
    }
  });
});
