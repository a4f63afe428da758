// Every metric the operator and the sidecar register, read from their registries (what Prometheus scrapes):
// the source of docs/observability.md's tables and of the name checks on the dashboard and the alert rules.
import { collectDefaultMetrics, Registry } from "prom-client";
import { OperatorMetrics } from "../../../src/operator/metrics.js";
import { SidecarMetrics } from "../../../src/runtime/sidecar/metrics.js";

export interface CatalogEntry {
  name: string;
  type: string;
  labels: string[];
  help: string;
}

export interface Catalog {
  operator: CatalogEntry[];
  sidecar: CatalogEntry[];
}

/** The labels every sidecar series carries (the registry's default labels). */
const SIDECAR_DEFAULT_LABELS = ["namespace", "modeldeployment"];

/** Names of Node's process metrics (collectDefaultMetrics) under a prefix: documented as a family, not one by one. */
async function processMetricNames(prefix: string): Promise<Set<string>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return new Set(registry.getMetricsAsArray().map((m) => m.name));
}

async function entries(registry: Registry, prefix: string, defaultLabels: string[]): Promise<CatalogEntry[]> {
  const processMetrics = await processMetricNames(prefix);
  return registry
    .getMetricsAsArray()
    .filter((m) => !processMetrics.has(m.name))
    .map((m) => {
      const own = ((m as unknown as { labelNames?: string[] }).labelNames ?? []).filter((l) => !defaultLabels.includes(l));
      return { name: m.name, type: String(m.type), labels: [...defaultLabels, ...own], help: m.help };
    });
}

export async function metricCatalog(): Promise<Catalog> {
  const sidecar = new SidecarMetrics({ model: "m", monitoring: () => undefined });
  return {
    operator: await entries(new OperatorMetrics().registry, "", []),
    sidecar: await entries(sidecar.registry, "ballast_sidecar_", SIDECAR_DEFAULT_LABELS),
  };
}

/** Every name a query may use: each metric, and a histogram's _bucket, _sum and _count series. */
export function seriesNames(catalog: Catalog): Set<string> {
  const names = new Set<string>();
  for (const m of [...catalog.operator, ...catalog.sidecar]) {
    names.add(m.name);
    if (m.type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) names.add(m.name + suffix);
  }
  return names;
}

/** The markdown table of one process's metrics, as docs/observability.md carries it. */
export function markdownTable(entries: CatalogEntry[]): string {
  const rows = [...entries]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((m) => `| \`${m.name}\` | ${m.type} | ${m.labels.map((l) => `\`${l}\``).join(", ") || "—"} | ${m.help.replaceAll("|", "\\|")} |`);
  return ["| Metric | Type | Labels | Meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}
