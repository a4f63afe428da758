// Renders a DriftReport as text, JSON or a self-contained HTML page (strings only; the caller writes them).
import type { DriftReport, FeatureDrift, Histogram } from "./compare.js";

export interface ReportSource {
  /** What the data set is called in the report, e.g. a file name. */
  label: string;
  rows: number;
}

export interface ReportContext {
  reference: ReportSource;
  current: ReportSource;
  /** How numeric features were profiled: exact values, sketches, or exact up to a limit. */
  mode: string;
  /** How features were judged, e.g. "fixed" or "calibrated (…)". */
  thresholds?: string;
}

function num(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return "-";
  if (x !== 0 && (Math.abs(x) < 1e-4 || Math.abs(x) >= 1e6)) return x.toExponential(2);
  return Number(x.toFixed(digits)).toString();
}

function verdictWord(f: FeatureDrift): string {
  if (f.status === "insufficient-data") return "no data";
  return f.drift ? "DRIFT" : "ok";
}

/** Fixed thresholds as written (0.05, 0.1); calibrated quantiles to 4 significant digits, marked "(cal.)". */
function thresholdText(f: FeatureDrift): string {
  return f.thresholdMode === "calibrated" ? `${num(f.threshold)} (cal.)` : String(f.threshold);
}

function summaryLine(report: DriftReport): string {
  if (report.status === "insufficient-data") return "Dataset drift: unknown (no feature had data on both sides)";
  return `Dataset drift: ${report.drift ? "YES" : "no"} (${report.driftedFeatures} of ${report.evaluatedFeatures} features drifted, share ${num(report.driftShare, 3)} ${report.drift ? "≥" : "<"} ${report.driftShareThreshold})`;
}

/** A fixed-width table per feature and the dataset verdict. */
export function renderDriftText(report: DriftReport, context: ReportContext): string {
  const header = ["feature", "type", "method", "statistic", "threshold", "p-value", "drift"];
  const all = [...report.features, ...report.prediction];
  const rows = all.map((f) => [
    report.prediction.includes(f) ? `${f.name} (prediction)` : f.name,
    f.type,
    f.method,
    num(f.statistic),
    thresholdText(f),
    num(f.pValue),
    verdictWord(f),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  const out = [
    `Drift report: ${context.reference.label} (${context.reference.rows} rows) → ${context.current.label} (${context.current.rows} rows), mode ${context.mode}${context.thresholds ? `, thresholds ${context.thresholds}` : ""}${report.correction !== "none" ? `, ${report.correction} correction` : ""}`,
    "",
    line(header),
    line(widths.map((w) => "-".repeat(w))),
    ...rows.map(line),
    "",
    summaryLine(report),
  ];
  const notes = all.filter((f) => f.drift || f.status === "insufficient-data").map((f) => `  - ${f.reason}`);
  if (notes.length > 0) out.push(...notes);
  if (report.prediction.length > 0) out.push(`Prediction drift: ${report.predictionDrift ? "YES" : "no"}`);
  return out.join("\n") + "\n";
}

/** The machine-readable report: every FeatureDrift field except the histogram. */
export function driftReportJSON(report: DriftReport, context: ReportContext): Record<string, unknown> {
  const strip = (f: FeatureDrift) => {
    const { histogram: _histogram, ...rest } = f;
    return rest;
  };
  return {
    drift: report.drift,
    driftShare: report.driftShare,
    driftShareThreshold: report.driftShareThreshold,
    driftedFeatures: report.driftedFeatures,
    evaluatedFeatures: report.evaluatedFeatures,
    status: report.status,
    correction: report.correction,
    mode: context.mode,
    ...(context.thresholds ? { thresholds: context.thresholds } : {}),
    reference: { source: context.reference.label, rows: context.reference.rows },
    current: { source: context.current.label, rows: context.current.rows },
    features: report.features.map(strip),
    prediction: report.prediction.map(strip),
    predictionDrift: report.predictionDrift,
  };
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

const REF_COLOR = "#4c78a8";
const CUR_COLOR = "#f58518";
const MAX_BARS = 30;

/** Side-by-side bars of reference vs current shares per bin, as inline SVG. */
function histogramSvg(h: Histogram): string {
  let labels = h.labels;
  let ref = h.reference;
  let cur = h.current;
  if (labels.length > MAX_BARS) {
    // Categorical tails: keep the largest bins, fold the rest into one bar.
    const order = labels.map((_, i) => i).sort((a, b) => ref[b]! + cur[b]! - (ref[a]! + cur[a]!));
    const keep = order.slice(0, MAX_BARS - 1);
    const rest = order.slice(MAX_BARS - 1);
    labels = [...keep.map((i) => h.labels[i]!), `${rest.length} more`];
    ref = [...keep.map((i) => h.reference[i]!), rest.reduce((s, i) => s + h.reference[i]!, 0)];
    cur = [...keep.map((i) => h.current[i]!), rest.reduce((s, i) => s + h.current[i]!, 0)];
  }
  const refTotal = ref.reduce((a, b) => a + b, 0) || 1;
  const curTotal = cur.reduce((a, b) => a + b, 0) || 1;
  const refShare = ref.map((v) => v / refTotal);
  const curShare = cur.map((v) => v / curTotal);
  const peak = Math.max(...refShare, ...curShare, 1e-9);
  const width = 520;
  const height = 170;
  const plotTop = 10;
  const plotHeight = 120;
  const slot = width / labels.length;
  const bar = Math.max(1, slot * 0.4);
  const bars = labels
    .map((label, i) => {
      const x = i * slot + slot * 0.1;
      const rh = (refShare[i]! / peak) * plotHeight;
      const ch = (curShare[i]! / peak) * plotHeight;
      const tip = `${escapeHtml(label)}: reference ${(refShare[i]! * 100).toFixed(1)}%, current ${(curShare[i]! * 100).toFixed(1)}%`;
      return (
        `<g><title>${tip}</title>` +
        `<rect x="${x.toFixed(1)}" y="${(plotTop + plotHeight - rh).toFixed(1)}" width="${bar.toFixed(1)}" height="${rh.toFixed(1)}" fill="${REF_COLOR}"/>` +
        `<rect x="${(x + bar).toFixed(1)}" y="${(plotTop + plotHeight - ch).toFixed(1)}" width="${bar.toFixed(1)}" height="${ch.toFixed(1)}" fill="${CUR_COLOR}"/></g>`
      );
    })
    .join("");
  // Binned numerics: label the axis with the range's ends rather than the first and last bin.
  const first = escapeHtml(h.edges ? num(h.edges[0]) : (labels[0] ?? ""));
  const last = escapeHtml(h.edges ? num(h.edges.at(-1)) : (labels.at(-1) ?? ""));
  const axis =
    labels.length <= 8
      ? labels
          .map(
            (l, i) =>
              `<text x="${(i * slot + slot / 2).toFixed(1)}" y="${plotTop + plotHeight + 16}" text-anchor="middle">${escapeHtml(l.length > 14 ? `${l.slice(0, 13)}…` : l)}</text>`,
          )
          .join("")
      : `<text x="0" y="${plotTop + plotHeight + 16}">${first}</text><text x="${width}" y="${plotTop + plotHeight + 16}" text-anchor="end">${last}</text>`;
  return `<svg viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="reference vs current distribution"><line x1="0" y1="${plotTop + plotHeight}" x2="${width}" y2="${plotTop + plotHeight}" stroke="#999"/>${bars}<g class="axis">${axis}</g></svg>`;
}

function featureCard(f: FeatureDrift, prediction: boolean): string {
  const cls = f.status === "insufficient-data" ? "nodata" : f.drift ? "drift" : "ok";
  const facts = [
    `${f.type}, ${f.method}`,
    `statistic ${num(f.statistic)}`,
    f.pValue !== null ? `p-value ${num(f.pValue)}` : "",
    f.thresholdMode === "calibrated" ? `calibrated threshold ${num(f.threshold)}` : `threshold ${f.threshold}`,
    `reference ${f.referenceCount} values, current ${f.currentCount}`,
    f.currentMissingShare > 0 ? `${(f.currentMissingShare * 100).toFixed(1)}% missing in current` : "",
    f.unseenShare ? `${(f.unseenShare * 100).toFixed(1)}% unseen categories` : "",
    f.approximate ? `sketch (rank error ≤ ${num(f.rankErrorBound)})` : "",
  ].filter(Boolean);
  return `<section class="card ${cls}"><h3>${escapeHtml(f.name)}${prediction ? " <small>(prediction)</small>" : ""} <span class="badge ${cls}">${verdictWord(f)}</span></h3>
<p class="facts">${facts.map(escapeHtml).join(" · ")}</p>
<p class="reason">${escapeHtml(f.reason)}</p>
${f.histogram ? histogramSvg(f.histogram) : ""}</section>`;
}

/** One self-contained HTML page: verdict banner, the table, and a histogram per feature. */
export function renderDriftHtml(report: DriftReport, context: ReportContext): string {
  const all = [...report.features.map((f) => [f, false] as const), ...report.prediction.map((f) => [f, true] as const)];
  // Drifted features first, then by how far past the threshold they are.
  const ordered = [...all].sort((a, b) => Number(b[0].drift) - Number(a[0].drift));
  const rows = all
    .map(([f, prediction]) => {
      const cls = f.status === "insufficient-data" ? "nodata" : f.drift ? "drift" : "ok";
      return `<tr class="${cls}"><td>${escapeHtml(f.name)}${prediction ? " (prediction)" : ""}</td><td>${f.type}</td><td>${f.method}</td><td>${num(f.statistic)}</td><td>${thresholdText(f)}</td><td>${num(f.pValue)}</td><td><span class="badge ${cls}">${verdictWord(f)}</span></td></tr>`;
    })
    .join("\n");
  const banner = report.status === "insufficient-data" ? "nodata" : report.drift ? "drift" : "ok";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ballast drift report</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1120px;color:#222;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}.sub{color:#666;margin:0 0 16px}
.banner{padding:14px 18px;border-radius:8px;font-size:17px;margin-bottom:18px}
.banner.drift{background:#fde2e1;border:1px solid #e45756}.banner.ok{background:#e3f4e1;border:1px solid #54a24b}.banner.nodata{background:#eee;border:1px solid #aaa}
table{border-collapse:collapse;width:100%;margin-bottom:22px}th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #e5e5e5}th{background:#f6f6f6}
td:nth-child(4),td:nth-child(5),td:nth-child(6){font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600}
.badge.drift{background:#e45756;color:#fff}.badge.ok{background:#54a24b;color:#fff}.badge.nodata{background:#999;color:#fff}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(540px,1fr));gap:14px}
.card{border:1px solid #ddd;border-radius:8px;padding:10px 14px}.card.drift{border-color:#e45756}
.card h3{margin:0 0 4px;font-size:16px}.facts{color:#555;margin:0 0 4px;font-size:12.5px}.reason{margin:0 0 6px;font-size:12.5px}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:-1px}
svg text{font-size:11px;fill:#555}
</style></head><body>
<h1>Drift report</h1>
<p class="sub">reference <b>${escapeHtml(context.reference.label)}</b> (${context.reference.rows} rows) → current <b>${escapeHtml(context.current.label)}</b> (${context.current.rows} rows) · mode ${escapeHtml(context.mode)}${context.thresholds ? ` · thresholds ${escapeHtml(context.thresholds)}` : ""}${report.correction !== "none" ? ` · ${report.correction} correction` : ""}</p>
<div class="banner ${banner}">${escapeHtml(summaryLine(report))}</div>
<table><thead><tr><th>feature</th><th>type</th><th>method</th><th>statistic</th><th>threshold</th><th>p-value</th><th>verdict</th></tr></thead><tbody>
${rows}
</tbody></table>
<p class="legend">Distributions:<span style="background:${REF_COLOR}"></span>reference<span style="background:${CUR_COLOR}"></span>current (share of rows per bin)</p>
<div class="grid">
${ordered.map(([f, prediction]) => featureCard(f, prediction)).join("\n")}
</div>
</body></html>
`;
}
