// The monitoring story on real data: a model trained on Seattle weather, served behind the sidecar; Seattle traffic
// then New York traffic; ground truth fed back. The user sees drift only for New York, accuracy per window, metrics.
import { execFile } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SidecarSummary } from "../../../src/monitoring/summary.js";
import { readMetadata } from "../../../src/runtime/metadata.js";
import { joinLog } from "../../../src/runtime/request-log.js";
import { openStore } from "../../../src/runtime/store.js";
import { sampleValue } from "../../support/prometheus-text.js";
import { ballastBin, postJson, startModelServer, startSidecar, stopAll, type LocalProcess } from "./local-processes.js";
import { inferBody, weatherFixture, type WeatherFixture, type WeatherRow } from "./weather-fixture.js";

const ROWS_PER_REQUEST = 5;
const WINDOW_ROWS = 300;

let fx: WeatherFixture;
let server: LocalProcess;
let sidecar: LocalProcess;
let dataDir: string;
/** What the caller got back, per request id: predicted label per row and the true label per row. */
const served = new Map<string, { predicted: string[]; truth: string[] }>();

async function sendTraffic(prefix: string, rows: readonly WeatherRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += ROWS_PER_REQUEST) {
    const batch = rows.slice(i, i + ROWS_PER_REQUEST);
    const id = `${prefix}-${i / ROWS_PER_REQUEST}`;
    const res = await postJson(`${sidecar.url}/v2/models/weather/infer`, inferBody(batch, id));
    expect(res.status).toBe(200);
    const body = res.body as { id: string; outputs: { name: string; data: string[] }[] };
    expect(body.id).toBe(id);
    expect(res.headers.get("inference-request-id")).toBe(id);
    served.set(id, { predicted: body.outputs.find((o) => o.name === "label")!.data, truth: batch.map((r) => r.weather) });
  }
}

function accuracyOf(prefix: string): number {
  let correct = 0;
  let total = 0;
  for (const [id, s] of served) {
    if (!id.startsWith(`${prefix}-`)) continue;
    s.predicted.forEach((p, i) => {
      total++;
      if (p === s.truth[i]) correct++;
    });
  }
  return correct / total;
}

async function summary(): Promise<SidecarSummary> {
  return (await (await fetch(`${sidecar.monitoringUrl}/v1/monitoring/summary`)).json()) as SidecarSummary;
}

beforeAll(async () => {
  fx = await weatherFixture({ holdoutRows: WINDOW_ROWS, newYorkRows: WINDOW_ROWS });
  dataDir = path.join(fx.dir, "sidecar-log");
  server = await startModelServer(`file://${fx.storeDir}`);
  // As the operator runs it: the ModelDeployment's name and, from the downward API, its namespace label the metrics.
  sidecar = await startSidecar(
    server.url,
    `file://${fx.storeDir}`,
    dataDir,
    ["--window-size", String(WINDOW_ROWS), "--window-duration", "0", "--modeldeployment", "weather-md"],
    { POD_NAME: "weather-7d9f-abcde", POD_NAMESPACE: "forecasts" },
  );
}, 120_000);

afterAll(async () => {
  await stopAll([sidecar, server]);
  fx?.cleanup();
});

describe("ballast sidecar on Seattle → New York weather", () => {
  it("proxies infer calls unchanged: the same body as the model server answers directly", async () => {
    const rows = fx.seattleHoldout.slice(0, 3);
    const direct = await postJson(`${server.url}/v2/models/weather/infer`, inferBody(rows, "same"));
    const proxied = await postJson(`${sidecar.url}/v2/models/weather/infer`, inferBody(rows, "same"));
    expect(proxied.status).toBe(200);
    expect(proxied.body).toEqual(direct.body);
    // Model metadata and health go through too.
    expect((await fetch(`${sidecar.url}/v2/models/weather`)).status).toBe(200);
    expect((await fetch(`${sidecar.url}/v2/health/ready`)).status).toBe(200);
  });

  it("assigns a request id when the caller sends none and returns it", async () => {
    const res = await postJson(`${sidecar.url}/v2/models/weather/infer`, inferBody(fx.seattleHoldout.slice(0, 1)));
    const id = res.headers.get("inference-request-id");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect((res.body as { id: string }).id).toBe(id);
  });

  it("profiles each window, flags drift for New York only, and joins feedback into accuracy per window", async () => {
    const before = await summary();
    const rowsBefore = before.windows.at(-1)!.rows;
    // The two requests above put 4 rows in the open window; fill it up to the window size with Seattle rows.
    const seattle = fx.seattleHoldout.slice(0, WINDOW_ROWS - rowsBefore);
    await sendTraffic("sea", seattle);
    await sendTraffic("ny", fx.newYork);

    const feedback = [...served.keys()].map((id) => ({ id, labels: served.get(id)!.truth }));
    for (let i = 0; i < feedback.length; i += 20) {
      const res = await postJson(`${sidecar.url}/v1/feedback`, { feedback: feedback.slice(i, i + 20) });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ accepted: feedback.slice(i, i + 20).reduce((n, f) => n + f.labels.length, 0) });
    }

    const s = await summary();
    expect(s.format).toBe("ballast.dev/sidecar-summary/v1");
    expect(s.pod).toBe("weather-7d9f-abcde");
    expect(s.model).toBe("weather");
    expect(s.version).toBe("v1");
    const [seattleWindow, nyWindow, open] = s.windows;
    expect(seattleWindow!.closed).toBe(true);
    expect(nyWindow!.closed).toBe(true);
    expect(open!.closed).toBe(false);
    expect(seattleWindow!.rows).toBe(WINDOW_ROWS);
    expect(nyWindow!.rows).toBe(WINDOW_ROWS);
    expect(seattleWindow!.features.rows).toBe(WINDOW_ROWS);
    expect(seattleWindow!.predictions.rows).toBe(WINDOW_ROWS);

    expect(seattleWindow!.drift!.drift).toBe(false);
    expect(nyWindow!.drift!.drift).toBe(true);
    const nyDrifted = nyWindow!.drift!.features.filter((f) => f.drift).map((f) => f.name);
    expect(nyDrifted).toContain("temp_min");
    expect(nyWindow!.drift!.driftShare).toBeGreaterThanOrEqual(0.5);

    // Accuracy per window, as computed here from the responses and the true labels.
    const seattleAccuracy = accuracyOf("sea");
    const nyAccuracy = accuracyOf("ny");
    expect(seattleWindow!.metrics.samples).toBe(seattle.length);
    expect(seattleWindow!.metrics.accuracy).toBeCloseTo(seattleAccuracy, 10);
    expect(nyWindow!.metrics.samples).toBe(WINDOW_ROWS);
    expect(nyWindow!.metrics.accuracy).toBeCloseTo(nyAccuracy, 10);
    expect(seattleAccuracy).toBeGreaterThan(0.6);
    expect(s.totals.feedback).toBe(feedback.reduce((n, f) => n + f.labels.length, 0));
  });

  it("exposes Prometheus metrics labelled with the ModelDeployment, version, feature and method", async () => {
    const text = await (await fetch(`${sidecar.monitoringUrl}/metrics`)).text();
    const md = { namespace: "forecasts", modeldeployment: "weather-md" };
    const value = (name: string, labels: Record<string, string> = {}) => sampleValue(text, name, { ...md, ...labels });
    expect(text).toMatch(
      /^ballast_model_info\{model="weather",version="v1",backend="(wasm|cpu|tensorflow)",namespace="forecasts",modeldeployment="weather-md"\} 1$/m,
    );
    expect(value("ballast_feature_drift", { version: "v1", feature: "temp_min", method: "ks" })).toBeGreaterThanOrEqual(0);
    expect(value("ballast_feature_drift_detected", { version: "v1", feature: "temp_min", method: "ks" })).toBe(1);
    expect(text).toMatch(/^ballast_prediction_drift\{version="v1",method="[a-z]+",namespace="forecasts",modeldeployment="weather-md"\} [0-9.e-]+$/m);
    expect(value("ballast_drift_share_ratio", { version: "v1" })).toBeGreaterThanOrEqual(0.5);
    expect(value("ballast_model_quality", { version: "v1", metric: "accuracy" })).toBeCloseTo(accuracyOf("ny"), 10);
    expect(text).not.toMatch(/^ballast_model_quality\{[^}]*metric="samples"/m);
    // Every New York row got its label, so the newest closed window is fully labelled.
    expect(value("ballast_window_labelled_ratio", { version: "v1" })).toBe(1);
    expect(value("ballast_window_samples", { version: "v1", kind: "rows" })).toBe(0);
    expect(value("ballast_sidecar_requests_total", { route: "infer", code: "200" })).toBeGreaterThanOrEqual(2 * (WINDOW_ROWS / ROWS_PER_REQUEST));
    expect(value("ballast_sidecar_feedback_total", { result: "accepted" })).toBe(2 * WINDOW_ROWS - 4);
    expect(value("ballast_sidecar_request_duration_seconds_bucket", { le: "0.005", route: "infer", code: "200" })).toBeGreaterThanOrEqual(0);
    // Each proxied infer call is split into the model server's time and what the sidecar added to it.
    const inferCalls = value("ballast_sidecar_request_duration_seconds_count", { route: "infer", code: "200" });
    expect(value("ballast_sidecar_upstream_duration_seconds_count", { route: "infer" })).toBe(inferCalls);
    expect(value("ballast_sidecar_added_latency_seconds_count", { route: "infer" })).toBe(inferCalls);
    const total = value("ballast_sidecar_request_duration_seconds_sum", { route: "infer", code: "200" })!;
    const upstream = value("ballast_sidecar_upstream_duration_seconds_sum", { route: "infer" })!;
    const added = value("ballast_sidecar_added_latency_seconds_sum", { route: "infer" })!;
    expect(upstream).toBeGreaterThan(0);
    expect(upstream + added).toBeCloseTo(total, 3);
    expect(value("ballast_robustness_ratio", { version: "v1" })).toBe(1);
    // The request log: what was written, and its size against the bound.
    expect(value("ballast_sidecar_log_written_bytes_total")).toBeGreaterThan(0);
    expect(value("ballast_sidecar_log_max_bytes")).toBe(1024 * 1024 * 1024);
  });

  it("rejects bad feedback with a clear 4xx and counts it", async () => {
    const [someId] = served.keys();
    const cases: [unknown, number, string][] = [
      [{ id: "never-served", label: "rain" }, 404, 'unknown request id "never-served"'],
      [{ id: someId, labels: served.get(someId!)!.truth }, 409, "already has feedback"],
      [{ id: someId, label: "rain" }, 400, `request "${someId}" has ${ROWS_PER_REQUEST} rows; give "row" or "labels"`],
      [{ id: someId, row: 9, label: "rain" }, 400, '"row" must be an integer from 0 to 4'],
      [{ id: someId, row: 0, label: "hail" }, 400, '"hail" is not one of the model\'s classes'],
      [{ id: someId, row: 0, label: { kind: "rain" } }, 400, 'feedback: "label" must be a class name or a number'],
      [{ label: "rain" }, 400, '"id" must be the non-empty request id'],
      [{ id: someId, row: 0 }, 400, '"label" is required'],
      [[], 400, "feedback batch is empty"],
      ["not json", 400, "malformed JSON"],
    ];
    for (const [body, status, message] of cases) {
      const res = await postJson(`${sidecar.url}/v1/feedback`, typeof body === "string" ? body : body);
      expect({ body, status: res.status }).toEqual({ body, status });
      expect((res.body as { error: string }).error).toContain(message);
    }
    const text = await (await fetch(`${sidecar.monitoringUrl}/metrics`)).text();
    expect(text).toMatch(/^ballast_sidecar_feedback_total\{result="unknown-id",namespace="forecasts",modeldeployment="weather-md"\} 1$/m);
    expect(text).toMatch(/^ballast_sidecar_feedback_total\{result="duplicate",namespace="forecasts",modeldeployment="weather-md"\} 1$/m);
    expect(text).toMatch(/^ballast_sidecar_feedback_total\{result="invalid",namespace="forecasts",modeldeployment="weather-md"\} 8$/m);
  });

  it("turns the durable log into training data: fine-tunes v1 on the feedback it collected", async () => {
    const run = await promisify(execFile)(ballastBin, [
      "train",
      "--data",
      fx.trainCsv,
      `sidecar-log://${dataDir}`,
      "--from-version",
      "v1",
      "--store",
      fx.storeDir,
      "--model",
      "weather",
      "--epochs",
      "3",
    ]);
    const out = JSON.parse(run.stdout) as {
      version: string;
      parentVersion: string;
      rows: number;
      holdoutMetrics: { accuracy: number };
      parentHoldoutMetrics: { accuracy: number };
    };
    const joined = await joinLog(dataDir);
    expect(joined.rows.length).toBe(2 * WINDOW_ROWS - 4);
    expect(out.version).toBe("v2");
    expect(out.parentVersion).toBe("v1");
    expect(out.rows).toBe(fs.readFileSync(fx.trainCsv, "utf8").trim().split("\n").length - 1 + joined.rows.length);
    expect(out.parentHoldoutMetrics.accuracy).toBeGreaterThan(0);
    const meta = await readMetadata(openStore(fx.storeDir), "weather", "v2");
    expect(meta.dataWindow.sources).toContain(`sidecar-log://${dataDir}`);
    expect(meta.dataWindow.from).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("answers 503 when the model server is down (its address only in the log), counts a failed run, and turns not ready", async () => {
    await server.stop();
    const res = await postJson(`${sidecar.url}/v2/models/weather/infer`, inferBody(fx.seattleHoldout.slice(0, 1)));
    expect(res.status).toBe(503);
    expect((res.body as { error: string }).error).toBe("model server unavailable; retry shortly");
    expect(await sidecar.lineWith('"event":"upstream-error"')).toContain(`"upstream":"${server.url}"`);
    const s = await summary();
    expect(s.totals.failedRequests).toBe(1);
    expect(s.windows.at(-1)!.failedRequests).toBe(1);
    const text = await (await fetch(`${sidecar.monitoringUrl}/metrics`)).text();
    expect(sampleValue(text, "ballast_sidecar_upstream_errors_total", { reason: "connect" })).toBe(1);
    expect(Number(/^ballast_robustness_ratio\{version="v1",namespace="forecasts",modeldeployment="weather-md"\} ([0-9.]+)$/m.exec(text)?.[1])).toBeLessThan(1);
    const deadline = Date.now() + 5000;
    let ready = 200;
    while (ready === 200 && Date.now() < deadline) {
      ready = (await fetch(`${sidecar.url}/v1/sidecar/ready`)).status;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready).toBe(503);
    expect((await fetch(`${sidecar.url}/v1/sidecar/live`)).status).toBe(200);
  });
});
