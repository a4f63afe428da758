#!/usr/bin/env node
// node hack/monitoring-manifests.mjs [repo root]   (run by `make manifests`)
// Writes deploy/components/monitoring/{prometheusrule,grafana-dashboard}.yaml from the chart's rules file and
// dashboard, the one source of both: kustomize cannot read files outside a kustomization's directory.
import console from "node:console";
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { parse, stringify } from "yaml";

const root = resolve(process.argv[2] ?? ".");
const out = resolve(root, "deploy/components/monitoring");
const header = (source) => `# Generated from ${source} by hack/monitoring-manifests.mjs (make manifests): edit that file instead.\n`;
const labels = { "app.kubernetes.io/name": "ballast", "app.kubernetes.io/component": "monitoring" };
// deploy/base's namespace: a component's objects do not get the base's namespace transformer.
const namespace = "ballast-system";

const rules = parse(readFileSync(resolve(root, "charts/ballast/rules/ballast-rules.yaml"), "utf8"));
const rule = {
  apiVersion: "monitoring.coreos.com/v1",
  kind: "PrometheusRule",
  metadata: { name: "ballast", namespace, labels },
  spec: { groups: rules.groups },
};
writeFileSync(resolve(out, "prometheusrule.yaml"), header("charts/ballast/rules/ballast-rules.yaml") + stringify(rule, { lineWidth: 0 }));

const dashboard = readFileSync(resolve(root, "charts/ballast/dashboards/ballast.json"), "utf8");
const configMap = {
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "ballast-dashboard", namespace, labels: { ...labels, grafana_dashboard: "1" } },
  data: { "ballast.json": dashboard },
};
writeFileSync(resolve(out, "grafana-dashboard.yaml"), header("charts/ballast/dashboards/ballast.json") + stringify(configMap, { lineWidth: 0 }));
console.log("wrote deploy/components/monitoring/prometheusrule.yaml, grafana-dashboard.yaml");
