// docs/observability.md lists every metric the operator and the sidecar register (name, type, labels, meaning:
// generated from their registries) and every dashboard panel with its queries (generated from the dashboard).
// A change to either that the doc does not show fails here; `UPDATE_DOCS=1 npx vitest run --project unit
// test/unit/observability/observability-doc.test.ts` rewrites the generated parts.
import { readFileSync, writeFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { markdownTable, metricCatalog, type Catalog } from "./metric-catalog.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const docPath = `${repoRoot}docs/observability.md`;

interface Panel {
  type: string;
  title: string;
  description?: string;
  targets?: { expr: string; legendFormat?: string }[];
}

function panelsMarkdown(): string {
  const dashboard = JSON.parse(readFileSync(`${repoRoot}charts/ballast/dashboards/ballast.json`, "utf8")) as { panels: Panel[] };
  return dashboard.panels
    .map((p) =>
      p.type === "row"
        ? `#### ${p.title}`
        : [`**${p.title}** (${p.type}): ${p.description ?? ""}`, "", "```promql", ...p.targets!.map((t) => `# ${t.legendFormat ?? ""}\n${t.expr}`), "```"].join(
            "\n",
          ),
    )
    .join("\n\n");
}

/** The doc with the part between `<!-- generated:NAME -->` and `<!-- /generated:NAME -->` replaced. */
function withGenerated(doc: string, name: string, body: string): string {
  const begin = `<!-- generated:${name} -->`;
  const end = `<!-- /generated:${name} -->`;
  const from = doc.indexOf(begin);
  const to = doc.indexOf(end);
  if (from < 0 || to < from) throw new Error(`docs/observability.md has no ${begin} … ${end} block`);
  return `${doc.slice(0, from + begin.length)}\n${body}\n${doc.slice(to)}`;
}

let catalog: Catalog;
let expected: string;
const doc = readFileSync(docPath, "utf8");

beforeAll(async () => {
  catalog = await metricCatalog();
  expected = withGenerated(
    withGenerated(withGenerated(doc, "operator-metrics", markdownTable(catalog.operator)), "sidecar-metrics", markdownTable(catalog.sidecar)),
    "dashboard-panels",
    panelsMarkdown(),
  );
  if (process.env.UPDATE_DOCS === "1" && expected !== doc) writeFileSync(docPath, expected);
});

describe("docs/observability.md", () => {
  it("lists every registered metric with its type, labels and meaning, and every panel's queries, as they are", () => {
    expect(doc).toBe(expected);
  });

  it("names each metric once in its tables", () => {
    for (const m of [...catalog.operator, ...catalog.sidecar]) expect(doc.split(`| \`${m.name}\` |`).length - 1, m.name).toBe(1);
  });

  it("shows how to install the monitors, the rules and the dashboard with kube-prometheus-stack", () => {
    expect(doc).toContain("helm install kube-prometheus-stack prometheus-community/kube-prometheus-stack");
    expect(doc).toContain("prometheusRule.enabled=true");
    expect(doc).toContain("grafanaDashboard.enabled=true");
    expect(doc).toContain("deploy/components/monitoring");
  });
});
