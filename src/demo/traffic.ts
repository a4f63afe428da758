// Real traffic through the Service as a client sends it (Open Inference Protocol v2), the ground truth fed back
// to the sidecar, and the sidecar's monitoring summary in words.
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, fetch } from "undici";
import { SIDECAR_PATHS } from "../api/index.js";
import type { SidecarSummary, WindowSummary } from "../monitoring/summary.js";
import { WEATHER_FEATURES, WEATHER_LABEL } from "./weather-data.js";

export interface TrafficResult {
  requests: number;
  rows: number;
  /** Rows the served model got right, as the client sees it from the responses. */
  correct: number;
  feedbackAccepted: number;
}

async function postJson(url: string, body: unknown, dispatcher: Agent): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
    dispatcher,
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text for the error message
  }
  return { status: res.status, body: parsed };
}

/** A row of traffic: feature values and the label as text, as read from a data set. */
export type TrafficRow = Readonly<Record<string, string>>;

/** OIP v2 infer body: one FP32 tensor per feature, one element per row. */
export function inferRequest(rows: readonly TrafficRow[], id: string, features: readonly string[] = WEATHER_FEATURES): object {
  return { id, inputs: features.map((name) => ({ name, shape: [rows.length], datatype: "FP32", data: rows.map((d) => Number(d[name])) })) };
}

/**
 * Sends `days` in requests of `rowsPerRequest` to `<serviceUrl>/v2/models/<model>/infer`, then the true
 * label of every row to `<feedbackUrl>/v1/feedback`, the way a labelling pipeline reports it later.
 * Weather rows by default; `features` and `label` name another data set's columns.
 */
export async function sendTrafficWithFeedback(options: {
  serviceUrl: string;
  feedbackUrl: string;
  model: string;
  days: readonly TrafficRow[];
  rowsPerRequest: number;
  idPrefix: string;
  features?: readonly string[];
  label?: string;
  /** Send the predictions but no feedback (labels that never arrive). */
  withoutFeedback?: boolean;
  /** Label each request right after its answer (an online labeller) instead of all at the end. */
  feedbackPerRequest?: boolean;
  signal?: AbortSignal;
}): Promise<TrafficResult> {
  const label = options.label ?? WEATHER_LABEL;
  const result: TrafficResult = { requests: 0, rows: 0, correct: 0, feedbackAccepted: 0 };
  const feedback: { id: string; labels: string[] }[] = [];
  // Connections of their own, opened now: a keep-alive connection from an earlier batch may still lead to a pod
  // that is draining after a rollout, whose answers' labels would then reach the new pod, which never saw them.
  const agent = new Agent();
  try {
    for (let i = 0; i < options.days.length; i += options.rowsPerRequest) {
      options.signal?.throwIfAborted();
      const batch = options.days.slice(i, i + options.rowsPerRequest);
      const id = `${options.idPrefix}-${i / options.rowsPerRequest}`;
      const url = `${options.serviceUrl}/v2/models/${options.model}/infer`;
      const res = await postJson(url, inferRequest(batch, id, options.features), agent);
      if (res.status !== 200) throw new Error(`POST ${url} answered ${res.status}: ${JSON.stringify(res.body)}`);
      const predicted = (res.body as { outputs?: { name: string; data: unknown[] }[] }).outputs?.find((o) => o.name === "label")?.data;
      if (!predicted || predicted.length !== batch.length)
        throw new Error(`POST ${url}: the response has no "label" output with ${batch.length} predictions: ${JSON.stringify(res.body).slice(0, 300)}`);
      result.requests++;
      result.rows += batch.length;
      batch.forEach((d, r) => {
        if (predicted[r] === d[label]) result.correct++;
      });
      if (options.withoutFeedback) continue;
      feedback.push({ id, labels: batch.map((d) => d[label]!) });
      if (options.feedbackPerRequest) result.feedbackAccepted += await postFeedback(options.feedbackUrl, feedback.splice(0), agent);
    }
    for (let i = 0; i < feedback.length; i += 50) result.feedbackAccepted += await postFeedback(options.feedbackUrl, feedback.slice(i, i + 50), agent);
  } finally {
    await agent.close();
  }
  return result;
}

async function postFeedback(feedbackUrl: string, feedback: { id: string; labels: string[] }[], agent: Agent): Promise<number> {
  const url = `${feedbackUrl}${SIDECAR_PATHS.feedback}`;
  const res = await postJson(url, { feedback }, agent);
  if (res.status !== 200) throw new Error(`POST ${url} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return (res.body as { accepted: number }).accepted;
}

/**
 * The first request after the pod turned Ready may find the Service proxy not yet pointing at it; a few
 * retries on connection errors cover that moment, and nothing else is retried.
 */
export async function waitForService(url: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(250);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs / 1000} s (last: ${last})`);
}

export async function fetchSummary(sidecarUrl: string): Promise<SidecarSummary> {
  const url = `${sidecarUrl}${SIDECAR_PATHS.summary}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as SidecarSummary;
}

const fixed = (x: number | null | undefined, digits = 3) => (x === null || x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(digits));

/** One window in words: rows, accuracy from feedback, the drift verdict overall and per feature. */
export function describeWindow(title: string, w: WindowSummary): string[] {
  const lines: string[] = [];
  const m = w.metrics;
  const accuracy = m.samples ? `accuracy ${fixed(m.accuracy)} on ${m.samples} labelled rows (f1 ${fixed(m.f1)})` : "no feedback yet";
  lines.push(`${title} window: ${w.rows} rows, ${w.requests} requests, ${w.closed ? "closed" : "open"} — ${accuracy}`);
  const d = w.drift;
  if (!d) {
    lines.push(`  drift: not evaluated (no rows)`);
    return lines;
  }
  const drifted = d.features.filter((f) => f.drift).map((f) => f.name);
  lines.push(
    d.drift
      ? `  drift: DRIFT — ${d.driftedFeatures} of ${d.evaluatedFeatures} features drifted (${drifted.join(", ")}); share ${fixed(d.driftShare, 2)} ≥ ${fixed(d.driftShareThreshold, 2)}`
      : `  drift: none — ${d.driftedFeatures} of ${d.evaluatedFeatures} features drifted${drifted.length ? ` (${drifted.join(", ")})` : ""}; share ${fixed(d.driftShare, 2)} < ${fixed(d.driftShareThreshold, 2)}`,
  );
  for (const f of d.features) {
    const p = f.adjustedPValue ?? f.pValue;
    const stat = `${f.method} ${fixed(f.statistic)}${p !== null ? `, p ${fixed(p, 4)}` : ""}`;
    lines.push(`    ${f.name.padEnd(14)} ${(f.drift ? "drifted" : f.status === "evaluated" ? "calm" : "n/a").padEnd(8)} ${stat}`);
  }
  for (const p of d.prediction) lines.push(`    ${"(predictions)".padEnd(14)} ${(p.drift ? "drifted" : "calm").padEnd(8)} ${p.method} ${fixed(p.statistic)}`);
  return lines;
}
