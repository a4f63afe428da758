// The model's story for `ballast history` (and the terminal tables the demo prints): built from what the API
// server keeps — the ModelDeployment's status, its Events and its retraining Jobs — with no I/O here.
import type { ModelDeployment, ShadowComparison, WindowRecord } from "./v1alpha1.js";

/** The parts of a core/v1 Event the story reads (events.k8s.io Events are served through core/v1 too). */
export interface StoryEvent {
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  eventTime?: string | null;
  firstTimestamp?: string | null;
  lastTimestamp?: string | null;
  series?: { count?: number; lastObservedTime?: string };
  metadata?: { creationTimestamp?: string | Date };
}

/** The parts of a batch/v1 Job the story reads. */
export interface StoryJob {
  metadata?: { name?: string; creationTimestamp?: string | Date; labels?: Record<string, string> };
  status?: {
    startTime?: string | Date;
    completionTime?: string | Date;
    succeeded?: number;
    failed?: number;
    active?: number;
    conditions?: { type?: string; status?: string; reason?: string; message?: string; lastTransitionTime?: string | Date }[];
  };
}

export type StepSource = "history" | "event";

/** One thing that happened to the model, oldest first. */
export interface StoryStep {
  time: string;
  source: StepSource;
  /** A history entry's event (Promoted, RolledBack, …) or an Event's reason. */
  what: string;
  version?: string;
  previousVersion?: string;
  metric?: number;
  /** Warning Events and failed steps. */
  warning: boolean;
  detail: string;
  /** How many times an Event repeated (series count). */
  count?: number;
}

export interface StoryJobRow {
  name: string;
  state: "Running" | "Complete" | "Failed" | "Pending";
  started?: string;
  finished?: string;
  durationSeconds?: number;
  detail?: string;
}

export interface ModelStory {
  namespace: string;
  name: string;
  model: string;
  servingVersion?: string;
  targetVersion?: string;
  previousVersion?: string;
  loopPhase?: string;
  loopSince?: string;
  loopMessage?: string;
  /** Versions in the order they were first seen in the story, with what became of each. */
  versions: { version: string; firstSeen: string; last: string }[];
  steps: StoryStep[];
  jobs: StoryJobRow[];
  /** status.recentWindows: the operator's merge of the sidecars' summaries, oldest first. */
  windows: WindowRecord[];
  gate?: NonNullable<NonNullable<ModelDeployment["status"]>["lastRetraining"]>["gate"];
  /** The last shadow's verdict (status.lastRetraining.shadow), else the one running now (status.shadow). */
  shadow?: ShadowComparison;
}

const iso = (t: string | Date | null | undefined): string | undefined =>
  t === undefined || t === null ? undefined : typeof t === "string" ? t : t.toISOString();

function eventTime(e: StoryEvent): string | undefined {
  return iso(e.series?.lastObservedTime) ?? iso(e.lastTimestamp) ?? iso(e.eventTime) ?? iso(e.firstTimestamp) ?? iso(e.metadata?.creationTimestamp);
}

// Events whose step status.history already records with its numbers (Promoted, RolledBack,
// RetrainingFailed, Rejected, ShadowPassed, ShadowRejected, Halted): listing both would say each step twice.
const EVENTS_SAID_BY_HISTORY = new Set([
  "Promoted",
  "RolledBack",
  "RetrainingFailed",
  "CandidateRejected",
  "ShadowPassed",
  "ShadowRejected",
  "TooManyFailures",
]);

export function buildStory(md: ModelDeployment, events: readonly StoryEvent[], jobs: readonly StoryJob[]): ModelStory {
  const st = md.status ?? {};
  const steps: StoryStep[] = [];
  for (const h of st.history ?? []) {
    steps.push({
      time: h.time,
      source: "history",
      what: h.event,
      version: h.version,
      ...(h.previousVersion ? { previousVersion: h.previousVersion } : {}),
      ...(h.metric !== undefined ? { metric: h.metric } : {}),
      warning: ["RetrainingFailed", "Rejected", "ShadowRejected", "RolledBack", "Halted"].includes(h.event),
      detail: [h.reason, h.message].filter(Boolean).join(": "),
    });
  }
  for (const e of events) {
    const time = eventTime(e);
    if (!time || !e.reason || EVENTS_SAID_BY_HISTORY.has(e.reason)) continue;
    const count = e.series?.count ?? e.count;
    steps.push({ time, source: "event", what: e.reason, warning: e.type === "Warning", detail: e.message ?? "", ...(count && count > 1 ? { count } : {}) });
  }
  // Stable order: by time, history before the Event that explains the same second.
  steps.sort((a, b) => a.time.localeCompare(b.time) || (a.source === b.source ? 0 : a.source === "history" ? -1 : 1));

  const versions = new Map<string, { version: string; firstSeen: string; last: string }>();
  const see = (version: string | undefined, time: string, what: string) => {
    if (!version) return;
    const v = versions.get(version);
    if (v) v.last = what;
    else versions.set(version, { version, firstSeen: time, last: what });
  };
  for (const s of steps) if (s.source === "history") see(s.version, s.time, s.what);
  // A version only the windows know (history keeps the last entries only) was at least served.
  for (const w of st.recentWindows ?? []) if (w.version && !versions.has(w.version)) see(w.version, w.windowEnd, "Served");

  return {
    namespace: md.metadata.namespace ?? "default",
    name: md.metadata.name ?? "",
    model: md.spec.model.name,
    ...(st.servingVersion ? { servingVersion: st.servingVersion } : {}),
    ...(st.targetVersion ? { targetVersion: st.targetVersion } : {}),
    ...(st.previousVersion ? { previousVersion: st.previousVersion } : {}),
    ...(st.loop ? { loopPhase: st.loop.phase, loopSince: st.loop.since, loopMessage: st.loop.message } : {}),
    versions: [...versions.values()],
    steps,
    jobs: jobs.map(jobRow).sort((a, b) => (a.started ?? "").localeCompare(b.started ?? "")),
    windows: [...(st.recentWindows ?? [])],
    ...(st.lastRetraining?.gate ? { gate: st.lastRetraining.gate } : {}),
    ...(st.lastRetraining?.shadow ? { shadow: st.lastRetraining.shadow } : st.shadow ? { shadow: st.shadow } : {}),
  };
}

function jobRow(job: StoryJob): StoryJobRow {
  const s = job.status ?? {};
  const done = s.conditions?.find((c) => (c.type === "Complete" || c.type === "Failed") && c.status === "True");
  const state: StoryJobRow["state"] = done ? (done.type as "Complete" | "Failed") : s.active ? "Running" : "Pending";
  const started = iso(s.startTime) ?? iso(job.metadata?.creationTimestamp);
  const finished = iso(s.completionTime) ?? (done ? iso(done.lastTransitionTime) : undefined);
  const durationSeconds = started && finished ? Math.max(0, Math.round((Date.parse(finished) - Date.parse(started)) / 1000)) : undefined;
  const detail = done?.type === "Failed" ? [done.reason, done.message].filter(Boolean).join(": ") : undefined;
  return {
    name: job.metadata?.name ?? "?",
    state,
    ...(started ? { started } : {}),
    ...(finished ? { finished } : {}),
    ...(durationSeconds !== undefined ? { durationSeconds } : {}),
    ...(detail ? { detail } : {}),
  };
}

// ---------------------------------------------------------------- terminal rendering

const fmt = (v: number | undefined, digits = 3): string => (v === undefined ? "-" : v.toFixed(digits));

/** Columns padded to their widest cell; the last column is not padded. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  return [header, ...rows]
    .map((line) =>
      line
        .map((c, i) => c.padEnd(widths[i]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

const BARS = "▁▂▃▄▅▆▇█";

/** One character per value on a fixed 0..1 scale (so two charts compare), "·" where there is no value. */
export function sparkline(values: readonly (number | undefined)[]): string {
  return values
    .map((v) =>
      v === undefined || !Number.isFinite(v) ? "·" : BARS[Math.min(BARS.length - 1, Math.max(0, Math.floor(Math.min(1, Math.max(0, v)) * BARS.length)))]!,
    )
    .join("");
}

const clock = (t: string | undefined): string => (t ? t.replace("T", " ").replace(/\.\d+Z$|Z$/, "") : "-");

function oneLine(s: string, max: number): string {
  const flat = s.replace(/\s+/g, " ").trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

export function formatStory(story: ModelStory): string {
  const out: string[] = [];
  const where = `${story.namespace}/${story.name}`;
  out.push(
    `ModelDeployment ${where} (model ${story.model}): serving ${story.servingVersion ?? "-"}` +
      (story.targetVersion && story.targetVersion !== story.servingVersion ? `, rolling to ${story.targetVersion}` : "") +
      (story.previousVersion ? `, previous ${story.previousVersion}` : ""),
  );
  if (story.loopPhase) out.push(`loop ${story.loopPhase} since ${clock(story.loopSince)}: ${story.loopMessage ?? ""}`);

  out.push("", "VERSIONS");
  out.push(
    story.versions.length
      ? table(
          ["VERSION", "FIRST SEEN", "LAST STEP"],
          story.versions.map((v) => [v.version, clock(v.firstSeen), v.last]),
        )
      : "(none recorded yet)",
  );

  out.push("", "STORY (status.history and Events, oldest first)");
  out.push(
    story.steps.length
      ? table(
          ["TIME", "WHAT", "VERSION", "METRIC", "DETAILS"],
          story.steps.map((s) => [
            clock(s.time),
            `${s.warning ? "! " : ""}${s.what}${s.count ? ` ×${s.count}` : ""}`,
            s.version ? `${s.version}${s.previousVersion ? ` (from ${s.previousVersion})` : ""}` : "",
            s.metric !== undefined ? fmt(s.metric) : "",
            oneLine(s.detail, 160),
          ]),
        )
      : "(nothing yet)",
  );

  if (story.gate) out.push("", `LAST GATE (${story.gate.passed ? "passed" : `failed: ${story.gate.failedRule ?? "?"}`})`, oneLine(story.gate.message, 400));
  if (story.shadow) out.push("", "LAST SHADOW (status.lastRetraining.shadow: the candidate on mirrored live requests)", ...formatShadow(story.shadow));

  out.push("", "RETRAINING JOBS");
  out.push(
    story.jobs.length
      ? table(
          ["NAME", "STATE", "STARTED", "DURATION", "DETAILS"],
          story.jobs.map((j) => [
            j.name,
            j.state,
            clock(j.started),
            j.durationSeconds !== undefined ? `${j.durationSeconds}s` : "-",
            oneLine(j.detail ?? "", 160),
          ]),
        )
      : "(none)",
  );

  out.push("", `WINDOWS (status.recentWindows: the last ${story.windows.length} judged, merged over the serving pods)`);
  if (story.windows.length) {
    out.push(
      table(
        ["ENDED", "VERSION", "ROWS", "LABELLED", "ACCURACY", "ESTIMATED", "DRIFT", "VERDICT", "BY"],
        story.windows.map((w) => [
          clock(w.windowEnd),
          w.version ?? "-",
          String(w.samples),
          String(w.labelledSamples ?? 0),
          fmt(w.accuracy),
          fmt(w.estimatedAccuracy),
          fmt(w.driftShare, 2),
          // A window re-judged on labels that came after it closed says so, and what it was first.
          w.firstJudged && w.firstJudged.verdict !== w.verdict ? `${w.verdict ?? "-"} (was ${w.firstJudged.verdict ?? "-"})` : (w.verdict ?? "-"),
          w.rejudgedTime ? `${w.decidedBy ?? "-"} (late)` : (w.decidedBy ?? "-"),
        ]),
      ),
    );
    out.push(`accuracy    ${sparkline(story.windows.map((w) => w.accuracy))}   (0 ▁ … █ 1)`);
    out.push(`estimated   ${sparkline(story.windows.map((w) => w.estimatedAccuracy))}   (label-free: from the served rows' calibrated confidence)`);
    out.push(`drift share ${sparkline(story.windows.map((w) => w.driftShare))}`);
    if (story.windows.some((w) => w.rejudgedTime))
      out.push("(late): re-judged when labels came after the window closed; (was …): its verdict when it closed, on the evidence it had then");
  } else {
    out.push("(no window judged yet)");
  }
  return out.join("\n");
}

/**
 * A shadow comparison in a person's words: pairs and labelled pairs, agreement, both models' metric on the labelled
 * pairs with the paired test's p-value, error rates and p99 latencies. `ballast history` and the demo print it.
 */
export function formatShadow(s: ShadowComparison): string[] {
  const p99 = (ms: number | undefined) => (ms === undefined ? "-" : `${fmt(ms, 1)} ms`);
  const improvement = s.improvement === undefined ? "" : ` (improvement ${s.improvement >= 0 ? "+" : ""}${fmt(s.improvement)})`;
  return [
    `candidate ${s.version}: ${s.verdict}${s.failedRule ? ` (${s.failedRule})` : ""}; ${s.rows} pairs, ${s.labelledPairs} labelled, agreement ${fmt(s.agreement)} ` +
      `(mirrored ${s.mirrored}, dropped ${s.dropped}, failed ${s.failed}; since ${clock(s.since)})`,
    `${s.metric} on the labelled pairs: candidate ${fmt(s.shadow)} vs serving ${fmt(s.serving)}${improvement}; ` +
      `${s.test ?? "paired test"} p-value ${s.pValue === undefined ? "-" : fmt(s.pValue, 4)}`,
    `error rate: candidate ${fmt(s.shadowErrorRate)} vs serving ${fmt(s.servingErrorRate)}; p99 latency: candidate ${p99(s.shadowP99Ms)} vs serving ${p99(s.servingP99Ms)}`,
    oneLine(s.message, 400),
  ];
}
