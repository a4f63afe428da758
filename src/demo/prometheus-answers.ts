// The demo's last look: live PromQL answers from the Prometheus beside the local cluster (`ballast dev up
// --prometheus`), asked over its HTTP API the way Grafana asks, with the URL a person opens to ask them again.
import { fetch } from "undici";
import { DEMO_NAMESPACE } from "./manifests.js";
import { fmt, pollUntil, type Session } from "./session.js";

export interface InstantSample {
  metric: Record<string, string>;
  value: number;
}

export interface RangeSeries {
  metric: Record<string, string>;
  values: { t: number; value: number }[];
}

interface ApiAnswer<T> {
  status: "success" | "error";
  data?: T;
  errorType?: string;
  error?: string;
}

async function ask<T>(url: string, path: string, params: Record<string, string>, signal?: AbortSignal): Promise<T> {
  const res = await fetch(`${url}${path}?${new URLSearchParams(params).toString()}`, {
    signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(10_000)]) : AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as ApiAnswer<T>;
  if (body.status !== "success") throw new Error(`Prometheus ${path} ${params.query}: ${body.errorType ?? res.status}: ${body.error ?? "?"}`);
  return body.data as T;
}

export async function instantQuery(url: string, expr: string, signal?: AbortSignal): Promise<InstantSample[]> {
  const data = await ask<{ resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] }>(
    url,
    "/api/v1/query",
    { query: expr },
    signal,
  );
  if (data.resultType !== "vector") throw new Error(`${expr}: a ${data.resultType}, not an instant vector`);
  return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

export async function rangeQuery(url: string, expr: string, startS: number, endS: number, stepS: number, signal?: AbortSignal): Promise<RangeSeries[]> {
  const data = await ask<{ result: { metric: Record<string, string>; values: [number, string][] }[] }>(
    url,
    "/api/v1/query_range",
    { query: expr, start: String(startS), end: String(endS), step: String(stepS) },
    signal,
  );
  return data.result.map((r) => ({ metric: r.metric, values: r.values.map(([t, v]) => ({ t, value: Number(v) })) }));
}

/** A gauge that holds each window's value until the next: the values in order, each run of equal samples once. */
export function distinctRuns(values: readonly { value: number }[]): number[] {
  const runs: number[] = [];
  for (const { value } of values) if (runs.at(-1) !== value) runs.push(value);
  return runs;
}

/** The Prometheus UI's graph page for `expr` over the last `range` (e.g. "15m"). */
export function graphUrl(url: string, expr: string, range: string): string {
  return `${url}/graph?${new URLSearchParams({ "g0.expr": expr, "g0.tab": "0", "g0.range_input": range }).toString()}`;
}

/** `{a="x", b="y"}` as PromQL and Prometheus print a label set. */
export function labelSet(metric: Record<string, string>, keep: readonly string[]): string {
  return `{${keep
    .filter((k) => metric[k] !== undefined)
    .map((k) => `${k}="${metric[k]}"`)
    .join(", ")}}`;
}

/**
 * Asks the cluster's Prometheus what it recorded of ModelDeployment `name` since `sinceMs`: the loop's phase now,
 * and the accuracy per window beside its label-free estimate (the dashboard's "Live quality" panel). Waits for a
 * scrape that saw the loop `phase` and the last window the operator judged (`lastWindowEnd`, ISO time): on a busy
 * machine the operator's last status write can land after Prometheus's last scrape (it scrapes every 2 s).
 */
export async function showPrometheusAnswers(
  s: Session,
  prometheusUrl: string,
  name: string,
  phase: string,
  sinceMs: number,
  lastWindowEnd?: string,
): Promise<{ phase: InstantSample[]; accuracy: RangeSeries[]; estimated: RangeSeries[] }> {
  const { narrator } = s;
  const where = `namespace="${DEMO_NAMESPACE}", modeldeployment="${name}"`;
  const phaseExpr = `ballast_modeldeployment_loop_phase{${where}} == 1`;
  const accuracyExpr = `ballast_modeldeployment_window_quality{${where}, metric="accuracy"}`;
  const estimatedExpr = `ballast_modeldeployment_window_quality_estimated{${where}, metric="accuracy"}`;
  const shown = (expr: string) => narrator.command(`curl -G ${prometheusUrl}/api/v1/query --data-urlencode 'query=${expr}'`);

  shown(phaseExpr);
  const phases = await pollUntil(
    s,
    `Prometheus to record loop phase ${phase} of ModelDeployment ${name}${lastWindowEnd ? ` and its window ending ${lastWindowEnd}` : ""}`,
    async () => {
      const answer = await instantQuery(prometheusUrl, phaseExpr, s.signal);
      if (!answer.some((a) => a.metric.phase === phase)) return undefined;
      if (lastWindowEnd === undefined) return answer;
      const end = await instantQuery(prometheusUrl, `ballast_modeldeployment_window_end_timestamp_seconds{${where}}`, s.signal);
      return end.some((e) => Number(e.value) >= Date.parse(lastWindowEnd) / 1000) ? answer : undefined;
    },
    30_000,
    1000,
  );
  narrator.block(
    phases.map((a) => `ballast_modeldeployment_loop_phase${labelSet(a.metric, ["namespace", "modeldeployment", "phase"])}  ${a.value}`).join("\n"),
  );

  const endS = Date.now() / 1000;
  const startS = sinceMs / 1000;
  const [accuracy, estimated] = await Promise.all([
    rangeQuery(prometheusUrl, accuracyExpr, startS, endS, 1, s.signal),
    rangeQuery(prometheusUrl, estimatedExpr, startS, endS, 1, s.signal),
  ]);
  const minutes = `${Math.ceil((endS - startS) / 60)}m`;
  narrator.command(`curl -G ${prometheusUrl}/api/v1/query_range --data-urlencode 'query=${accuracyExpr}' -d start=… -d end=… -d step=1s   # and the estimate`);
  const runs = (series: RangeSeries[]) =>
    series.map((r) =>
      `${r.metric.version ?? ""} ${distinctRuns(r.values)
        .map((v) => fmt(v))
        .join(" → ")}`.trim(),
    );
  narrator.block(
    [
      `accuracy per window, as Prometheus recorded it over the last ${minutes} (each value held until the next window):`,
      ...runs(accuracy).map((l) => `  labels     ${l}`),
      ...runs(estimated).map((l) => `  estimated  ${l}`),
    ].join("\n"),
  );
  narrator.say(`open them in Prometheus: ${prometheusUrl}`);
  for (const expr of [phaseExpr, `${accuracyExpr} or ${estimatedExpr}`]) narrator.say(`  ${graphUrl(prometheusUrl, expr, minutes)}`);
  narrator.say(
    "every panel's query of the shipped dashboard (charts/ballast/dashboards/ballast.json) runs as is here, with $namespace and $modeldeployment filled in",
  );
  return { phase: phases, accuracy, estimated };
}
