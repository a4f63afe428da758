// `ballast dev up --prometheus` writes a prometheus.yml generated from the shipped ServiceMonitor and PodMonitor and
// loads the shipped rules: promtool (built from the same Prometheus module) accepts both, and the rules load whether
// they come as a plain rules file or wrapped in a PrometheusRule.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import {
  locatePrometheusTool,
  prometheusConfig,
  readManifests,
  ruleGroupsOf,
  SHIPPED_MONITORS_DIR,
  SHIPPED_SERVICES_DIR,
  SHIPPED_RULES_FILE,
  type Monitor,
} from "../../../src/devcluster/prometheus.js";
import type { V1Service } from "@kubernetes/client-node";

let promtool = "";
let dir = "";

function promtoolRun(args: string[]) {
  const res = spawnSync(promtool, args, { encoding: "utf8" });
  return { status: res.status, output: res.stdout + res.stderr };
}

describe("the dev Prometheus's config and the shipped rules", () => {
  beforeAll(() => {
    // Built once from hack/prometheus's Go module (minutes on a cold Go cache).
    promtool = locatePrometheusTool("promtool");
    dir = mkdtempSync(join(tmpdir(), "prometheus-config-"));
  }, 1_800_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the shipped rules pass promtool check rules", () => {
    const res = promtoolRun(["check", "rules", SHIPPED_RULES_FILE]);
    expect(res.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(res.status).toBe(0);
  });

  it("every alert fires where it should and stays quiet where it should not (promtool test rules)", () => {
    const res = promtoolRun(["test", "rules", "test/oracle/promtool/ballast-rules.test.yaml"]);
    expect(res.output).toMatch(/SUCCESS/);
    expect(res.status, res.output).toBe(0);
  });

  it("promtool check rules rejects a rule with a PromQL typo (the check is real)", () => {
    const bad = join(dir, "bad-rules.yaml");
    writeFileSync(bad, stringify({ groups: [{ name: "g", rules: [{ alert: "A", expr: "rate(ballast_sidecar_requests_total[5m]" }] }] }));
    const res = promtoolRun(["check", "rules", bad]);
    expect(res.status).not.toBe(0);
    expect(res.output).toMatch(/unclosed left parenthesis/);
  });

  it("the scrape config generated from the shipped monitors passes promtool check config", () => {
    const kubeconfig = join(dir, "prometheus.kubeconfig");
    writeFileSync(kubeconfig, "apiVersion: v1\nkind: Config\n");
    const config = join(dir, "prometheus.yml");
    const monitors = readManifests<Monitor>(SHIPPED_MONITORS_DIR, ["ServiceMonitor", "PodMonitor"]);
    const services = readManifests<V1Service>(SHIPPED_SERVICES_DIR, ["Service"]);
    const generated = prometheusConfig({ kubeconfig, monitors, services, ruleFiles: [SHIPPED_RULES_FILE], intervalSeconds: 2 });
    // One job per monitor: the ServiceMonitor found the operator's metrics Service.
    expect((generated.scrape_configs as { job_name: string }[]).map((j) => j.job_name).sort()).toEqual([
      "podMonitor/ballast-system/ballast-serving/0",
      "serviceMonitor/ballast-system/ballast-operator/0",
    ]);
    writeFileSync(config, stringify(generated));
    const res = promtoolRun(["check", "config", "--syntax-only", config]);
    expect(res.output).toContain("SUCCESS");
    expect(res.status).toBe(0);
  });

  it("renders the ServiceMonitor as discovery of the pods its Service selects, on the Service's target port, ready ones only", () => {
    const monitors = readManifests<Monitor>(SHIPPED_MONITORS_DIR, ["ServiceMonitor"]);
    const services = readManifests<V1Service>(SHIPPED_SERVICES_DIR, ["Service"]);
    const [job] = prometheusConfig({ kubeconfig: "kc", monitors, services, ruleFiles: [], intervalSeconds: 2 }).scrape_configs as {
      honor_labels: boolean;
      kubernetes_sd_configs: { role: string; namespaces?: { names: string[] } }[];
      relabel_configs: { source_labels?: string[]; regex?: string; action?: string; target_label?: string; replacement?: string }[];
    }[];
    expect(job!.honor_labels).toBe(true);
    expect(job!.kubernetes_sd_configs).toEqual([{ role: "pod", kubeconfig_file: "kc", namespaces: { names: ["ballast-system"] } }]);
    const keeps = job!.relabel_configs.filter((r) => r.action === "keep").map((r) => [r.source_labels![0], r.regex]);
    expect(keeps).toEqual([
      ["__meta_kubernetes_pod_label_app_kubernetes_io_name", "ballast"],
      ["__meta_kubernetes_pod_label_app_kubernetes_io_component", "operator"],
      ["__meta_kubernetes_pod_container_port_name", "metrics"],
      ["__meta_kubernetes_pod_ready", "true"],
    ]);
    for (const label of ["job", "service"]) expect(job!.relabel_configs).toContainEqual({ target_label: label, replacement: "ballast-operator-metrics" });
  });

  it("reads the same rule groups from the plain file and from a PrometheusRule wrapping it", () => {
    const plain = readFileSync(SHIPPED_RULES_FILE, "utf8");
    const groups = ruleGroupsOf(plain, "plain");
    expect(groups.length).toBeGreaterThan(0);
    const wrapped = stringify({ apiVersion: "monitoring.coreos.com/v1", kind: "PrometheusRule", metadata: { name: "ballast" }, spec: { groups } });
    expect(ruleGroupsOf(wrapped, "wrapped")).toEqual(groups);
  });

  it("says which file is neither a rules file nor a PrometheusRule", () => {
    expect(() => ruleGroupsOf("kind: ConfigMap\ndata: {}\n", "cm.yaml")).toThrow("cm.yaml: neither a rules file (groups:) nor a PrometheusRule (spec.groups)");
    expect(() => ruleGroupsOf("groups: [\n", "broken.yaml")).toThrow(/^broken.yaml: not YAML/);
  });
});
