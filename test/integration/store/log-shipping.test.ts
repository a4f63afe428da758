// Given a real S3 server (SeaweedFS) as the model store, a sidecar's request log is shipped segment by segment to
// `<prefix>/<model>/_log/<pod>/`: acknowledged feedback reaches the bucket exactly once even when the server dies in
// the middle of an upload, nothing leaves the pod's disk before the bucket has it, a full spool refuses feedback
// instead of losing it, and `ballast train --feedback s3://…/_log` retrains from what was shipped.
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { LogShipper, type LogShipEvent, type LogShipTarget } from "../../../src/runtime/log-shipping.js";
import { RequestLog, RequestLogSpoolFullError, listSegments, readLog } from "../../../src/runtime/request-log.js";
import { S3ModelStore, s3SettingsFromEnv } from "../../../src/runtime/s3-store.js";
import { openStore } from "../../../src/runtime/store.js";
import { useSeaweedS3, type SeaweedS3 } from "../../support/seaweedfs.js";
import { trainWeather } from "../../support/train-weather.js";
import { postJson, startBallast, waitUntilReady, type LocalProcess } from "../../unit/runtime/local-processes.js";
import { inferBody, loadWeather } from "../../unit/runtime/weather-fixture.js";

const STORE = "s3://models/team/store";
const HEADER = { model: "weather", version: "v1", task: "classification" as const, label: "weather", features: ["wind"] };

const s3 = useSeaweedS3("models");
const temps: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "l1-log-shipping-"));
  temps.push(dir);
  return dir;
}

function store(env: Record<string, string> = s3.env): S3ModelStore {
  return openStore(STORE, { s3: s3SettingsFromEnv(env) }) as S3ModelStore;
}

/** Keys under a pod's shipped log, and every feedback record in them, read straight from the bucket. */
function shipped(pod: string): ReturnType<SeaweedS3["shippedFeedback"]> {
  return s3.shippedFeedback("models", `team/store/weather/_log/${pod}/`);
}

/** A request log in a fresh spool directory with its shipper (started), as the sidecar wires them with --ship-log. */
async function shippingLog(
  pod: string,
  target: LogShipTarget,
  spoolBytes: number,
  events: LogShipEvent[],
): Promise<{ dir: string; log: RequestLog; shipper: LogShipper }> {
  const dir = await tempDir();
  const shipper = new LogShipper({
    dir,
    model: "weather",
    pod,
    target,
    spoolBytes,
    intervalMs: 20,
    retryMs: 50,
    maxRetryMs: 400,
    onEvent: (e) => events.push(e),
  });
  const log = await RequestLog.open(dir, HEADER, {
    pod,
    segmentBytes: 4096,
    maxBytes: Number.MAX_SAFE_INTEGER,
    maxAgeMs: 0,
    spoolFull: () => shipper.spoolFull,
  });
  shipper.start();
  return { dir, log, shipper };
}

async function localFeedback(dir: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const r of readLog(dir)) if (r.kind === "feedback") ids.add(r.id);
  return ids;
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); await sleep(50)) if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
}

afterAll(async () => {
  for (const dir of temps) await fs.rm(dir, { recursive: true, force: true });
});

describe("request log shipping to s3://", () => {
  it("ships every acknowledged label exactly once although the server dies mid-upload, deleting nothing locally before the bucket has it", async () => {
    const pod = "weather-7d9f-kill";
    const real = store();
    let uploads = 0;
    let killedDuring: Promise<void> | undefined;
    // The third upload is cut off by the server dying while it is in flight.
    const target: LogShipTarget = {
      putLogSegment: (model, p, name, body, signal) => {
        const put = real.putLogSegment(model, p, name, body, signal);
        if (++uploads === 3) killedDuring = sleep(1).then(() => s3.kill());
        return put;
      },
    };
    const events: LogShipEvent[] = [];
    const { dir, log, shipper } = await shippingLog(pod, target, 1 << 30, events);
    const acked: string[] = [];
    try {
      const write = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) {
          const id = `req-${acked.length}`;
          log.append({ kind: "inference", id, ts: Date.now(), version: "v1", rows: [[i]], predictions: ["sun"] });
          log.append({ kind: "feedback", id, row: 0, label: "rain", ts: Date.now() });
          await log.commit();
          acked.push(id);
        }
      };
      await write(150);
      await until("the server to be killed mid-upload", () => killedDuring !== undefined);
      await killedDuring;
      await write(150);
      await until("failed uploads while the server is down", () => events.some((e) => e.event === "log-ship-failed"));
      // While it is down, every label acknowledged and not in the bucket is still on the pod's disk.
      const local = await localFeedback(dir);
      await s3.restart();
      const before = await shipped(pod);
      const inBucket = new Set(before.feedback.map((f) => f.id));
      expect(acked.filter((id) => !inBucket.has(id) && !local.has(id))).toEqual([]);

      await write(50);
      await log.close();
      const left = await shipper.close(30_000);
      expect(left.spoolBytes).toBe(0);
      expect(await listSegments(dir)).toEqual([]);
      expect(left.failures).toBeGreaterThan(0);
      const after = await shipped(pod);
      // Exactly once by content: one object per sealed segment, and each label in one of them only.
      expect(new Set(after.keys).size).toBe(after.keys.length);
      expect(after.keys.every((k) => /\/segment-\d{10}\.sealed\.jsonl$/.test(k))).toBe(true);
      expect(after.feedback.map((f) => f.id).sort()).toEqual([...acked].sort());
    } finally {
      await log.close();
      await shipper.close(0);
    }
  }, 300_000);

  it("refuses feedback (spool full) instead of losing it while the server is down, and accepts it again once the spool drains", async () => {
    const pod = "weather-7d9f-full";
    const events: LogShipEvent[] = [];
    const { dir, log, shipper } = await shippingLog(pod, store(), 16_384, events);
    const acked: string[] = [];
    let refused: unknown;
    try {
      s3.kill();
      for (let i = 0; i < 2000 && refused === undefined; i++) {
        const id = `full-${i}`;
        log.append({ kind: "inference", id, ts: Date.now(), version: "v1", rows: [[i]], predictions: ["sun"] });
        log.append({ kind: "feedback", id, row: 0, label: "rain", ts: Date.now() });
        try {
          await log.commit();
          acked.push(id);
        } catch (err) {
          refused = err;
        }
        await sleep(2);
      }
      expect(refused).toBeInstanceOf(RequestLogSpoolFullError);
      expect(shipper.getStats()).toMatchObject({ spoolFull: true });
      expect(events.some((e) => e.event === "log-spool-full")).toBe(true);
      // The log stays healthy: the sidecar keeps serving inference, it only stops acknowledging.
      expect(log.health().healthy).toBe(true);

      await s3.restart();
      await until("the spool to drain", () => !shipper.spoolFull);
      expect(events.some((e) => e.event === "log-spool-drained")).toBe(true);
      log.append({ kind: "inference", id: "after", ts: Date.now(), version: "v1", rows: [[0]], predictions: ["sun"] });
      log.append({ kind: "feedback", id: "after", row: 0, label: "rain", ts: Date.now() });
      await log.commit();
      acked.push("after");
      await log.close();
      expect((await shipper.close(30_000)).spoolBytes).toBe(0);
      expect(await listSegments(dir)).toEqual([]);
      const ids = (await shipped(pod)).feedback.map((f) => f.id);
      for (const id of acked) expect(ids).toContain(id);
    } finally {
      await log.close();
      await shipper.close(0);
    }
  }, 300_000);

  it("says access denied without the secret when the keys are wrong, and keeps the segment", async () => {
    const dir = await tempDir();
    const pod = "weather-7d9f-keys";
    const wrong = { ...s3.env, AWS_SECRET_ACCESS_KEY: "not-the-secret-0123456789" };
    const events: LogShipEvent[] = [];
    const shipper = new LogShipper({
      dir,
      model: "weather",
      pod,
      target: store(wrong),
      spoolBytes: 1 << 30,
      intervalMs: 20,
      retryMs: 50,
      onEvent: (e) => events.push(e),
    });
    const log = await RequestLog.open(dir, HEADER, { pod, segmentBytes: 4096 });
    log.append({ kind: "feedback", id: "k", row: 0, label: "rain", ts: Date.now() });
    await log.commit();
    await log.close();
    shipper.start();
    await until("a failed upload", () => events.some((e) => e.event === "log-ship-failed"));
    await shipper.close(0);
    const failure = events.find((e) => e.event === "log-ship-failed") as Extract<LogShipEvent, { event: "log-ship-failed" }>;
    expect(failure.error).toMatch(/access denied .*SignatureDoesNotMatch.*credentialsSecretRef/);
    expect(JSON.stringify(events)).not.toContain(wrong.AWS_SECRET_ACCESS_KEY);
    expect(JSON.stringify(events)).not.toContain(s3.secretAccessKey);
    expect((await listSegments(dir)).length).toBe(1);
  }, 120_000);

  describe("`ballast sidecar --ship-log` in front of `ballast serve`, then `ballast train` from the shipped log", () => {
    const pod = "weather-serving-7d9f-ship1";
    let server: LocalProcess | undefined;
    let sidecar: LocalProcess | undefined;

    afterAll(async () => {
      await sidecar?.stop();
      await server?.stop();
    });

    it("ships the log while serving and at SIGTERM, and retrains on exactly the labels it acknowledged", async () => {
      expect(trainWeather(STORE, s3.env).status).toBe(0);
      const since = new Date().toISOString();
      server = await startBallast(["serve", "--store", STORE, "--model", "weather"], s3.env);
      await waitUntilReady(`${server.url}/v2/health/ready`);
      const dataDir = await tempDir();
      sidecar = await startBallast(
        ["sidecar", "--upstream", server.url, "--store", STORE, "--model", "weather", "--data-dir", dataDir, "--ship-log", "--log-segment-bytes", "4096"],
        { ...s3.env, POD_NAME: pod },
      );
      await waitUntilReady(`${sidecar.url}/v1/sidecar/ready`);
      const rows = loadWeather().slice(0, 120);
      for (const [i, row] of rows.entries()) {
        const id = `ship-${i}`;
        expect((await postJson(`${sidecar.url}/v2/models/weather/infer`, inferBody([row], id))).status).toBe(200);
        expect((await postJson(`${sidecar.url}/v1/feedback`, { id, label: row.weather })).status).toBe(200);
      }
      const metric = async (name: string): Promise<number> => {
        const text = await (await fetch(`${sidecar!.monitoringUrl}/metrics`)).text();
        return Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
      };
      // Sealed segments leave while the sidecar serves; the open one waits for its size, age or the stop.
      await until("segments shipped while serving", async () => (await metric("ballast_sidecar_log_shipped_segments_total")) > 0);
      expect(await metric("ballast_sidecar_log_ship_failures_total")).toBe(0);
      // The open segment is the spool (measured at each look for sealed segments, every 2 s).
      await until("the spool measured", async () => (await metric("ballast_sidecar_log_spool_bytes")) > 0);
      const summary = (await (await fetch(`${sidecar.monitoringUrl}/v1/monitoring/summary`)).json()) as { totals: Record<string, number> };
      expect(summary.totals).toMatchObject({ logSpoolFull: 0, logShipFailures: 0 });

      expect(await sidecar.stop("SIGTERM")).toBe(0);
      expect(await listSegments(dataDir)).toEqual([]);
      const inBucket = await shipped(pod);
      expect(inBucket.feedback.map((f) => f.id).sort()).toEqual(rows.map((_, i) => `ship-${i}`).sort());
      expect(sidecar.lines.join("\n")).not.toContain(s3.secretAccessKey);

      const retrain = trainWeather(STORE, s3.env, [
        "--from-version",
        "v1",
        "--version",
        "r1",
        "--candidate",
        "--feedback",
        `${STORE}/weather/_log`,
        "--feedback-since",
        since,
      ]);
      expect(retrain.status, retrain.stderr).toBe(0);
      const feedback = retrain.stderr
        .split("\n")
        .filter((l) => l.includes('"event":"feedback"'))
        .map((l) => JSON.parse(l) as { rows: number; directories: string[] })[0];
      // The earlier tests' pods shipped labels too, before --feedback-since: read, and left out by time.
      expect(feedback?.rows).toBe(rows.length);
      expect(feedback?.directories.map((d) => path.basename(d))).toContain(pod);
      expect(retrain.stderr + retrain.stdout).not.toContain(s3.secretAccessKey);
      expect((await store().listVersions("weather")).map((v) => v.version)).toEqual(["v1", "r1"]);
    }, 300_000);
  });
});
