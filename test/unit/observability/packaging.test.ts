// The alert rules and the dashboard reach users the two ways Ballast installs: the Helm chart (behind values) and
// the kustomize component deploy/components/monitoring, both carrying exactly the files under charts/ballast/.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const rulesFile = parse(readFileSync(`${repoRoot}charts/ballast/rules/ballast-rules.yaml`, "utf8")) as { groups: unknown[] };
const dashboardFile = readFileSync(`${repoRoot}charts/ballast/dashboards/ballast.json`, "utf8");

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { groups: unknown[] };
  data?: Record<string, string>;
}

describe("deploy/components/monitoring", () => {
  const dir = `${repoRoot}deploy/components/monitoring`;
  const read = (file: string) => parse(readFileSync(`${dir}/${file}`, "utf8")) as Manifest;

  it("is a kustomize Component with the PrometheusRule and the dashboard ConfigMap", () => {
    const kustomization = parse(readFileSync(`${dir}/kustomization.yaml`, "utf8")) as { kind: string; resources: string[] };
    expect(kustomization).toMatchObject({ kind: "Component", resources: ["prometheusrule.yaml", "grafana-dashboard.yaml"] });
  });

  it("carries the chart's rules and dashboard as they are (make manifests regenerates them)", () => {
    const rule = read("prometheusrule.yaml");
    expect(rule).toMatchObject({ apiVersion: "monitoring.coreos.com/v1", kind: "PrometheusRule", metadata: { namespace: "ballast-system" } });
    expect(rule.spec!.groups).toEqual(rulesFile.groups);
    const dashboard = read("grafana-dashboard.yaml");
    expect(dashboard).toMatchObject({ kind: "ConfigMap", metadata: { namespace: "ballast-system", labels: { grafana_dashboard: "1" } } });
    expect(dashboard.data!["ballast.json"]).toBe(dashboardFile);
  });
});

describe("charts/ballast: prometheusRule and grafanaDashboard values", () => {
  let helm = "";
  beforeAll(() => {
    // helm on PATH, else built once from hack/helm's Go module (minutes on a cold Go cache).
    helm = execFileSync(`${repoRoot}hack/helm/ensure-helm.sh`, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  }, 900_000);

  function template(...set: string[]): Manifest[] {
    const res = spawnSync(helm, ["template", "ballast", `${repoRoot}charts/ballast`, "--namespace", "ballast-system", ...set.flatMap((s) => ["--set", s])], {
      encoding: "utf8",
    });
    if (res.status !== 0) throw new Error(`helm template failed: ${res.stderr}`);
    return parseAllDocuments(res.stdout)
      .map((d) => d.toJSON() as Manifest | null)
      .filter((d): d is Manifest => d !== null);
  }

  it("renders neither by default (the CRD may not exist, and Grafana may not run)", () => {
    const kinds = template().map((m) => `${m.kind}/${m.metadata.name}`);
    expect(kinds.filter((k) => k.startsWith("PrometheusRule/") || k.endsWith("-dashboard"))).toEqual([]);
  });

  it("renders the rules file as a PrometheusRule, with the labels a Prometheus's ruleSelector asks for", () => {
    const rule = template("prometheusRule.enabled=true", "prometheusRule.labels.release=kube-prometheus-stack").find((m) => m.kind === "PrometheusRule")!;
    expect(rule.metadata).toMatchObject({ namespace: "ballast-system", labels: { release: "kube-prometheus-stack" } });
    // Prometheus's {{ $labels.* }} templates pass through Helm untouched.
    expect(rule.spec!.groups).toEqual(rulesFile.groups);
  });

  it('renders the dashboard as a ConfigMap labelled grafana_dashboard: "1", in Grafana\'s namespace when asked', () => {
    const cm = template("grafanaDashboard.enabled=true", "grafanaDashboard.namespace=monitoring").find(
      (m) => m.kind === "ConfigMap" && m.metadata.name.endsWith("-dashboard"),
    )!;
    expect(cm.metadata).toMatchObject({ namespace: "monitoring", labels: { grafana_dashboard: "1" } });
    expect(JSON.parse(cm.data!["ballast.json"]!)).toEqual(JSON.parse(dashboardFile));
  });

  it("refuses an unknown key under the new values (values.schema.json)", () => {
    const res = spawnSync(helm, ["template", "ballast", `${repoRoot}charts/ballast`, "--set", "prometheusRule.enable=true"], { encoding: "utf8" });
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(/prometheusRule/);
  });
});
