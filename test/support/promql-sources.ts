// Every PromQL expression a user's Grafana and Prometheus would run from what Ballast ships: the dashboard's panel
// and annotation queries, its variable queries, and the alerting and recording rules.
import { readFileSync } from "node:fs";
import { ruleGroupsOf } from "../../src/devcluster/prometheus.js";

export interface PromqlSource {
  /** Where the expression lives, for a failure message: e.g. `panel "Live accuracy" A`. */
  where: string;
  expr: string;
}

export interface DashboardQuery extends PromqlSource {
  /** A panel draws its result; an annotation query marks events (a promotion), so it is empty until one happens. */
  kind: "panel" | "annotation";
}

export interface DashboardVariableQuery {
  name: string;
  /** The metric selector of `label_values(<selector>, <label>)`. */
  selector: string;
  label: string;
}

interface Panel {
  title?: string;
  targets?: { refId?: string; expr?: string }[];
  panels?: Panel[];
}

interface Dashboard {
  panels?: Panel[];
  annotations?: { list?: { name?: string; expr?: string }[] };
  templating?: { list?: { name: string; type: string; query?: string | { query?: string } }[] };
}

/** Panel queries (rows' nested panels included) and annotation queries of a Grafana dashboard file. */
export function dashboardExpressions(file: string): DashboardQuery[] {
  const dashboard = JSON.parse(readFileSync(file, "utf8")) as Dashboard;
  const found: DashboardQuery[] = [];
  const walk = (panels: Panel[] | undefined) => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (t.expr) found.push({ kind: "panel", where: `panel "${p.title ?? "?"}" ${t.refId ?? ""}`.trim(), expr: t.expr });
      walk(p.panels);
    }
  };
  walk(dashboard.panels);
  for (const a of dashboard.annotations?.list ?? []) if (a.expr) found.push({ kind: "annotation", where: `annotation "${a.name ?? "?"}"`, expr: a.expr });
  return found;
}

/** The dashboard's `label_values(selector, label)` variable queries (the only query form its variables use). */
export function dashboardVariableQueries(file: string): DashboardVariableQuery[] {
  const dashboard = JSON.parse(readFileSync(file, "utf8")) as Dashboard;
  return (dashboard.templating?.list ?? [])
    .filter((v) => v.type === "query")
    .map((v) => {
      const query = typeof v.query === "string" ? v.query : (v.query?.query ?? "");
      const m = /^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/s.exec(query);
      if (!m) throw new Error(`dashboard variable ${v.name}: query ${JSON.stringify(query)} is not label_values(<selector>, <label>)`);
      return { name: v.name, selector: m[1]!, label: m[2]! };
    });
}

/** Alerting and recording rule expressions of a rules file (or PrometheusRule). */
export function ruleExpressions(file: string): (PromqlSource & { alert?: string })[] {
  return ruleGroupsOf(readFileSync(file, "utf8"), file).flatMap((g) =>
    g.rules.map((r) => ({
      where: `group ${g.name} ${r.alert ? `alert ${r.alert}` : `record ${r.record ?? "?"}`}`,
      expr: r.expr,
      ...(r.alert ? { alert: r.alert } : {}),
    })),
  );
}

/**
 * What Grafana sends for a dashboard query: its variables ($v, ${v}, ${v:fmt}, [[v]]) replaced by the chosen values
 * and its built-in intervals by fixed ones (a scrape-interval-sized rate window, as $__rate_interval gives).
 */
export function substituteDashboardVariables(expr: string, values: Record<string, string>, rateInterval: string): string {
  const builtIns: Record<string, string> = {
    __rate_interval: rateInterval,
    __interval: rateInterval,
    __range: "5m",
    __range_s: "300",
    __interval_ms: "15000",
  };
  const all = { ...builtIns, ...values };
  return expr.replace(/\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g, (whole, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c)!;
    if (!(name in all)) throw new Error(`dashboard query uses an unknown variable $${name}: ${expr}`);
    return all[name]!;
  });
}
