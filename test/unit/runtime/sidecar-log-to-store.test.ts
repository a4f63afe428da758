// Two serving pods' sidecars keep their request logs in the shared store (--log-to-store), one directory per pod,
// bounded together: every acknowledged label is either still in a log or counted as dropped, never lost silently.
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOCK_FILE } from "../../../src/runtime/log-lock.js";
import { listSegments, podLogDirectories, readLog } from "../../../src/runtime/request-log.js";
import { ballastBin, postJson, startBallast, startModelServer, stopAll, waitUntilReady, type LocalProcess } from "./local-processes.js";
import { inferBody, weatherFixture, type WeatherFixture } from "./weather-fixture.js";

const PODS = ["weather-serving-7d9f-aaaaa", "weather-serving-7d9f-bbbbb"];
const REQUESTS_PER_POD = 150;

let fx: WeatherFixture;
let server: LocalProcess;
const sidecars: LocalProcess[] = [];
let logRoot: string;

async function startStoreSidecar(pod: string, extra: string[] = []): Promise<LocalProcess> {
  const proc = await startBallast(
    [
      "sidecar",
      "--upstream",
      server.url,
      "--store",
      `file://${fx.storeDir}`,
      "--model",
      "weather",
      "--log-to-store",
      "--log-segment-bytes",
      "4096",
      "--log-max-bytes",
      "16384",
      ...extra,
    ],
    { POD_NAME: pod },
  );
  await waitUntilReady(`${proc.url}/v1/sidecar/ready`);
  return proc;
}

beforeAll(async () => {
  fx = await weatherFixture({ epochs: 2 });
  logRoot = path.join(fx.storeDir, "weather", "_log");
  server = await startModelServer(fx.storeDir);
  for (const pod of PODS) sidecars.push(await startStoreSidecar(pod));
}, 120_000);

afterAll(async () => {
  await stopAll([...sidecars, server]);
  fx?.cleanup();
});

describe("ballast sidecar --log-to-store", () => {
  it("logs each pod under <store>/<model>/_log/<pod>/, bounds them together, and counts every label it drops", async () => {
    const rows = [...fx.seattleHoldout, ...fx.newYork];
    let acked = 0;
    await Promise.all(
      sidecars.map(async (sidecar, p) => {
        for (let i = 0; i < REQUESTS_PER_POD; i++) {
          const id = `${PODS[p]}-req-${i}`;
          const row = rows[(p * REQUESTS_PER_POD + i) % rows.length]!;
          expect((await postJson(`${sidecar.url}/v2/models/weather/infer`, inferBody([row], id))).status).toBe(200);
          const fb = await postJson(`${sidecar.url}/v1/feedback`, { id, label: row.weather });
          expect(fb.status).toBe(200);
          acked++;
        }
      }),
    );
    expect((await podLogDirectories(logRoot)).map((d) => path.basename(d))).toEqual(PODS);

    // Labels still on disk (every pod's directory) plus labels the bounds dropped (summed over the sidecars) = acknowledged.
    let logged = 0;
    for (const dir of await podLogDirectories(logRoot)) for await (const r of readLog(dir)) if (r.kind === "feedback") logged++;
    const totals = await Promise.all(
      sidecars.map(async (s) => (await (await fetch(`${s.monitoringUrl}/v1/monitoring/summary`)).json()) as { totals: Record<string, number> }),
    ).then((all) => all.map((x) => x.totals));
    const droppedFeedback = totals.reduce((n, t) => n + t.logDroppedFeedback!, 0);
    const droppedSegments = totals.reduce((n, t) => n + t.logDroppedSegments!, 0);
    expect(droppedSegments).toBeGreaterThan(0);
    expect(droppedFeedback).toBeGreaterThan(0);
    expect(logged + droppedFeedback).toBe(acked);
    for (const [i, s] of sidecars.entries()) {
      const text = await (await fetch(`${s.monitoringUrl}/metrics`)).text();
      expect(Number(/^ballast_sidecar_log_dropped_feedback_total\{modeldeployment="weather"\} (\d+)$/m.exec(text)?.[1])).toBe(totals[i]!.logDroppedFeedback);
      expect(Number(/^ballast_sidecar_log_dropped_segments_total\{modeldeployment="weather"\} (\d+)$/m.exec(text)?.[1])).toBe(totals[i]!.logDroppedSegments);
      expect(Number(/^ballast_sidecar_log_dropped_bytes_total\{modeldeployment="weather"\} (\d+)$/m.exec(text)?.[1])).toBe(totals[i]!.logDroppedBytes);
      // What the "feedback log near its bound" alert compares: the model's whole log after the bounds ran, and the bound.
      const retained = Number(/^ballast_sidecar_log_retained_bytes\{modeldeployment="weather"\} (\d+)$/m.exec(text)?.[1]);
      expect(retained).toBeGreaterThan(0);
      expect(retained).toBeLessThanOrEqual(16384 + 2 * 4096);
      expect(Number(/^ballast_sidecar_log_max_bytes\{modeldeployment="weather"\} (\d+)$/m.exec(text)?.[1])).toBe(16384);
    }
    // The bound holds over both pods' directories (one open segment each may run over by a record batch).
    let bytes = 0;
    for (const dir of await podLogDirectories(logRoot)) for (const s of await listSegments(dir)) bytes += fs.statSync(s.file).size;
    expect(bytes).toBeLessThanOrEqual(16384 + 2 * 4096 + 4096);
  });

  it("on SIGTERM seals every segment and releases the directory, which stays readable for retraining", async () => {
    for (const s of sidecars.splice(0)) expect(await s.stop("SIGTERM")).toBe(0);
    for (const dir of await podLogDirectories(logRoot)) {
      expect(fs.existsSync(path.join(dir, LOCK_FILE))).toBe(false);
      const segments = await listSegments(dir);
      expect(segments.length).toBeGreaterThan(0);
      expect(segments.every((s) => s.sealed)).toBe(true);
    }
  });

  it("refuses --log-to-store on a read-only http(s) store, and wants exactly one of --data-dir and --log-to-store", () => {
    const run = (args: string[]) =>
      spawnSync(ballastBin, ["sidecar", "--upstream", "http://127.0.0.1:1", "--model", "weather", "--host", "127.0.0.1", "--port", "0", ...args], {
        encoding: "utf8",
      });
    const http = run(["--store", "https://models.example/store", "--log-to-store"]);
    expect(http.status).toBe(2);
    expect(http.stderr).toContain("--log-to-store needs a writable store (pvc:// or file://)");
    for (const args of [
      ["--store", fx.storeDir],
      ["--store", fx.storeDir, "--log-to-store", "--data-dir", "/tmp/x"],
    ]) {
      const res = run(args);
      expect(res.status).toBe(2);
      expect(res.stderr).toContain("give exactly one of --data-dir <dir> and --log-to-store");
    }
  });
});
