// Sidecar request logs as serving pods leave them under `<store>/<model>/_log/<pod>/`, written record by record in
// the documented format (header, inference, feedback), so the trainer is tested against the files, not the writer.
import fs from "node:fs";
import path from "node:path";
import { WEATHER_FEATURES, type WeatherRow } from "../runtime/weather-fixture.js";

export interface LoggedRequest {
  id: string;
  ts: number;
  rows: WeatherRow[];
  /** Rows of the request that received feedback (default: all). */
  labelled?: number[];
}

/** One pod's log: `segments` segment files, each starting with a header line. */
export function writePodLog(dir: string, version: string, requests: readonly LoggedRequest[], segments = 2): void {
  fs.mkdirSync(dir, { recursive: true });
  const per = Math.ceil(requests.length / segments);
  for (let s = 0; s < segments; s++) {
    const part = requests.slice(s * per, (s + 1) * per);
    const lines: object[] = [
      {
        kind: "segment",
        model: "weather",
        version,
        task: "classification",
        label: "weather",
        features: [...WEATHER_FEATURES],
        startedAt: new Date(part[0]?.ts ?? 0).toISOString(),
      },
    ];
    for (const r of part) {
      lines.push({
        kind: "inference",
        id: r.id,
        ts: r.ts,
        version,
        rows: r.rows.map((row) => WEATHER_FEATURES.map((f) => Number(row[f]))),
        predictions: r.rows.map(() => "sun"),
      });
    }
    for (const r of part) {
      for (const k of r.labelled ?? r.rows.map((_, i) => i)) lines.push({ kind: "feedback", id: r.id, row: k, label: r.rows[k]!.weather, ts: r.ts + 500 });
    }
    fs.writeFileSync(path.join(dir, `segment-${String(s + 1).padStart(10, "0")}.jsonl`), lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  }
}

/**
 * Feedback on `rows` served one a minute from `start` by two pods under `root` (a `_log/`): the first pod gets single-row
 * requests, the second two-row requests (feedback per row); every 10th single-row request gets no feedback.
 */
export function writeServedTraffic(
  root: string,
  version: string,
  rows: readonly WeatherRow[],
  start: number,
  idPrefix: string,
  pods: readonly [string, string] = ["pod-a", "pod-b"],
): { labelled: number } {
  const a: LoggedRequest[] = [];
  const b: LoggedRequest[] = [];
  let labelled = 0;
  for (let i = 0; i < rows.length; i++) {
    const ts = start + i * 60_000;
    if (i % 3 === 0) {
      const unlabelled = a.length % 10 === 9;
      a.push({ id: `${idPrefix}-a${i}`, ts, rows: [rows[i]!], labelled: unlabelled ? [] : [0] });
      if (!unlabelled) labelled++;
    } else if (i % 3 === 1) {
      const pair = rows.slice(i, i + 2);
      b.push({ id: `${idPrefix}-b${i}`, ts, rows: pair });
      labelled += pair.length;
    }
  }
  writePodLog(path.join(root, pods[0]), version, a);
  writePodLog(path.join(root, pods[1]), version, b);
  return { labelled };
}
