// Shadow mirroring with real processes: a serving pair (serve v1 + sidecar) and a shadow pair (serve v2 + sidecar),
// both weather classifiers trained on Seattle. The operator's switch is PUT /v1/mirror on the serving sidecar's
// monitoring port; the user sends inference and feedback as always. The summary then pairs both models on the same
// requests and labels, the shadow's own sidecar has recorded the same ids and labels, and a dead or hanging shadow
// costs the user nothing.
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ShadowSummary } from "../../../src/monitoring/shadow-summary.js";
import type { SidecarSummary } from "../../../src/monitoring/summary.js";
import { parseSidecarSummary } from "../../../src/monitoring/summary-schema.js";
import { readLog } from "../../../src/runtime/request-log.js";
import { idFraction } from "../../../src/runtime/sidecar/mirror.js";
import { postJson, startModelServer, startSidecar, stopAll, type LocalProcess } from "./local-processes.js";
import { inferBody, trainWeather, weatherFixture, type WeatherFixture, type WeatherRow } from "./weather-fixture.js";

const TOKEN = "mirror-feedback-token-0123456789";
const ROWS_PER_REQUEST = 3;

let fx: WeatherFixture;
let servingServer: LocalProcess;
let serving: LocalProcess;
let shadowServer: LocalProcess;
let shadow: LocalProcess;
let shadowLog: string;
let hanging: net.Server;
const hangingSockets = new Set<net.Socket>();

const auth = { authorization: `Bearer ${TOKEN}` };
const inMinutes = (m: number) => new Date(Date.now() + m * 60_000).toISOString();

async function mirrorCall(method: string, body?: unknown, base = serving.monitoringUrl!): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${base}/v1/mirror`, {
    method,
    ...(body !== undefined ? { headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text === "" ? undefined : (JSON.parse(text) as unknown) };
}

async function summaryOf(proc: LocalProcess): Promise<SidecarSummary> {
  return (await (await fetch(`${proc.monitoringUrl}/v1/monitoring/summary`)).json()) as SidecarSummary;
}

async function shadowBlock(servingSidecar = serving): Promise<ShadowSummary | undefined> {
  return (await summaryOf(servingSidecar)).shadow;
}

/** Polls the serving sidecar's shadow block until `done` holds (mirroring is asynchronous by design). */
async function shadowWhen(done: (s: ShadowSummary) => boolean, timeoutMs = 30_000, servingSidecar = serving): Promise<ShadowSummary> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await shadowBlock(servingSidecar);
    if (s && done(s)) return s;
    if (Date.now() > deadline) throw new Error(`shadow block never reached the expected state: ${JSON.stringify(s)}`);
    await sleep(50);
  }
}

function labelsOf(body: unknown): string[] {
  return (body as { outputs: { name: string; data: string[] }[] }).outputs.find((o) => o.name === "label")!.data;
}

/** Sends one infer request per batch of rows to the serving sidecar; the latency the user saw (ms) per request. */
async function infer(prefix: string, rows: readonly WeatherRow[], count: number): Promise<{ ids: string[]; predicted: Map<string, string[]>; ms: number[] }> {
  const ids: string[] = [];
  const predicted = new Map<string, string[]>();
  const ms: number[] = [];
  for (let i = 0; i < count; i++) {
    const batch = rows.slice((i * ROWS_PER_REQUEST) % (rows.length - ROWS_PER_REQUEST)).slice(0, ROWS_PER_REQUEST);
    const id = `${prefix}-${i}`;
    const started = performance.now();
    const res = await postJson(`${serving.url}/v2/models/weather/infer`, inferBody(batch, id));
    ms.push(performance.now() - started);
    expect(res.status).toBe(200);
    ids.push(id);
    predicted.set(id, labelsOf(res.body));
  }
  return { ids, predicted, ms };
}

const quantile = (ms: readonly number[], q: number) => [...ms].sort((a, b) => a - b)[Math.ceil(q * ms.length) - 1]!;
const p99 = (ms: readonly number[]) => quantile(ms, 0.99);

beforeAll(async () => {
  fx = await weatherFixture({ holdoutRows: 300, newYorkRows: 10 });
  // The candidate: another small classifier on the same data, so it answers differently on some rows.
  await trainWeather(fx.storeDir, fx.trainCsv, { epochs: 3, seed: 7, hiddenUnits: [4] });
  const tokenFile = path.join(fx.dir, "feedback-token");
  fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const token = ["--feedback-token-file", tokenFile];
  servingServer = await startModelServer(fx.storeDir, ["--version", "v1"]);
  serving = await startSidecar(servingServer.url, fx.storeDir, path.join(fx.dir, "serving-log"), token);
  shadowServer = await startModelServer(fx.storeDir, ["--version", "v2"]);
  shadowLog = path.join(fx.dir, "shadow-log");
  shadow = await startSidecar(shadowServer.url, fx.storeDir, shadowLog, token);
  // A shadow that takes connections and never answers.
  hanging = net.createServer((socket) => {
    hangingSockets.add(socket);
    socket.on("close", () => hangingSockets.delete(socket));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => hanging.listen(0, "127.0.0.1", resolve));
}, 240_000);

afterAll(async () => {
  await stopAll([serving, servingServer, shadow, shadowServer]);
  for (const s of hangingSockets) s.destroy();
  hanging?.close();
  fx?.cleanup();
});

describe("mirroring to a shadow candidate", () => {
  it("answers /v1/mirror on the monitoring port only: 404 on the serving port", async () => {
    for (const method of ["GET", "PUT", "DELETE"]) {
      const res = await fetch(`${serving.url}/v1/mirror`, { method, ...(method === "PUT" ? { body: "{}" } : {}) });
      expect(res.status, method).toBe(404);
      expect(await res.json()).toEqual({ error: expect.stringMatching(/not served on this port/) as unknown });
    }
    expect(await mirrorCall("GET")).toEqual({ status: 200, body: { mirror: null } });
    expect((await summaryOf(serving)).shadow).toBeUndefined();
  });

  it("refuses a bad setting with 400 naming the field, and other methods with 405", async () => {
    const good = { version: "v2", targets: [shadow.url], sampleRate: 1, expiresAt: inMinutes(2) };
    const cases: [unknown, RegExp][] = [
      [{ ...good, version: "" }, /"version"/],
      [{ ...good, targets: [] }, /"targets"/],
      [{ ...good, targets: ["ftp://10.0.0.1:21"] }, /targets\[0\]: must use http/],
      [{ ...good, sampleRate: 0 }, /"sampleRate"/],
      [{ ...good, expiresAt: "soon" }, /"expiresAt"/],
      [{ ...good, colour: "red" }, /"colour" is not a field here/],
      ["{not json", /malformed JSON/],
    ];
    for (const [body, message] of cases) {
      const res = await mirrorCall("PUT", body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((res.body as { error: string }).error).toMatch(message);
    }
    const post = await fetch(`${serving.monitoringUrl}/v1/mirror`, { method: "POST", body: "{}" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, PUT, DELETE");
    expect(await mirrorCall("GET")).toEqual({ status: 200, body: { mirror: null } });
  });

  it("pairs both models on the same requests and labels, and the shadow records the same ids and labels", async () => {
    const expiresAt = inMinutes(2);
    const put = await mirrorCall("PUT", { version: "v2", targets: [shadow.url], sampleRate: 1, expiresAt });
    expect(put.status).toBe(200);
    const view = (put.body as { mirror: { since: string } }).mirror;
    expect(view).toEqual({ version: "v2", targets: [shadow.url], sampleRate: 1, expiresAt: new Date(expiresAt).toISOString(), since: view.since });
    expect((await mirrorCall("GET")).body).toEqual(put.body);

    const requests = 40;
    const { ids, predicted } = await infer("pair", fx.seattleHoldout, requests);
    // What the candidate answers on the same rows, asked directly (its sidecar must see only the mirrored calls).
    const truth = new Map<string, string[]>();
    let agreed = 0;
    const cells = { bothRight: 0, servingOnly: 0, shadowOnly: 0, bothWrong: 0 };
    for (const [i, id] of ids.entries()) {
      const batch = fx.seattleHoldout.slice((i * ROWS_PER_REQUEST) % (fx.seattleHoldout.length - ROWS_PER_REQUEST)).slice(0, ROWS_PER_REQUEST);
      truth.set(
        id,
        batch.map((r) => r.weather),
      );
      const candidate = labelsOf((await postJson(`${shadowServer.url}/v2/models/weather/infer`, inferBody(batch))).body);
      predicted.get(id)!.forEach((p, r) => {
        const label = batch[r]!.weather;
        if (p === candidate[r]) agreed++;
        if (p === label && candidate[r] === label) cells.bothRight++;
        else if (p === label) cells.servingOnly++;
        else if (candidate[r] === label) cells.shadowOnly++;
        else cells.bothWrong++;
      });
    }
    // The two models do differ on these rows: agreement alone would not show a pairing mistake otherwise.
    expect(agreed).toBeLessThan(requests * ROWS_PER_REQUEST);

    // Feedback right after the answers: some may arrive while their mirror is still on its way.
    const feedback = await postJson(`${serving.url}/v1/feedback`, { feedback: ids.map((id) => ({ id, labels: truth.get(id) })) }, auth);
    expect(feedback).toMatchObject({ status: 200, body: { accepted: requests * ROWS_PER_REQUEST } });

    const labelled = (s: ShadowSummary) =>
      s.pairs.task === "classification" ? s.pairs.bothRight + s.pairs.servingOnly + s.pairs.shadowOnly + s.pairs.bothWrong : 0;
    const s = await shadowWhen((x) => x.mirrored === requests && x.rows === requests * ROWS_PER_REQUEST && labelled(x) === requests * ROWS_PER_REQUEST);
    expect(s).toMatchObject({ version: "v2", since: view.since, mirrored: requests, dropped: 0, failed: 0, agreedRows: agreed, sumAbsDifference: 0 });
    expect(s.pairs).toEqual({ task: "classification", ...cells });
    expect(s.servingLatency.reduce((a, b) => a + b)).toBe(requests);
    expect(s.shadowLatency.reduce((a, b) => a + b)).toBe(requests);
    // What the operator reads: the summary with its shadow block passes the operator's own parser.
    expect(parseSidecarSummary(await summaryOf(serving)).shadow).toEqual(s);

    // The shadow's own sidecar saw exactly the mirrored ids, and got every label (forwarded with the feedback token).
    const shadowSummary = await (async () => {
      for (const deadline = Date.now() + 15_000; ; await sleep(50)) {
        const x = await summaryOf(shadow);
        if (x.totals.feedback >= requests * ROWS_PER_REQUEST || Date.now() > deadline) return x;
      }
    })();
    expect(shadowSummary.version).toBe("v2");
    expect(shadowSummary.totals).toMatchObject({ requests, rows: requests * ROWS_PER_REQUEST, feedback: requests * ROWS_PER_REQUEST, feedbackRejected: 0 });
    const recorded = new Map<string, { inference: number; labels: (string | number)[] }>();
    for await (const record of readLog(shadowLog)) {
      if (record.kind !== "inference" && record.kind !== "feedback") continue;
      const r = recorded.get(record.id) ?? { inference: 0, labels: [] };
      if (record.kind === "inference") r.inference++;
      else r.labels[record.row] = record.label;
      recorded.set(record.id, r);
    }
    expect([...recorded.keys()].sort()).toEqual([...ids].sort());
    for (const id of ids) expect(recorded.get(id)).toEqual({ inference: 1, labels: truth.get(id) });

    const metrics = await (await fetch(`${serving.monitoringUrl}/metrics`)).text();
    expect(metrics).toContain(`ballast_sidecar_mirror_requests_total{outcome="sent",modeldeployment="weather"} ${requests}`);
    expect(metrics).toMatch(/ballast_sidecar_mirror_feedback_total\{outcome="sent",modeldeployment="weather"\} [1-9]/);
  });

  it("samples by request id, keeps the tallies when the same version is renewed, and stops at expiresAt", async () => {
    const before = (await shadowBlock())!;
    const renewed = await mirrorCall("PUT", { version: "v2", targets: [shadow.url], sampleRate: 0.5, expiresAt: inMinutes(2) });
    expect((renewed.body as { mirror: { since: string } }).mirror.since).toBe(before.since);
    const { ids } = await infer("half", fx.seattleHoldout, 40);
    const sampled = ids.filter((id) => idFraction(id) < 0.5).length;
    expect(sampled).toBeGreaterThan(0);
    expect(sampled).toBeLessThan(ids.length);
    await shadowWhen((s) => s.mirrored === before.mirrored + sampled && s.rows === before.rows + sampled * ROWS_PER_REQUEST);

    // A lease that runs out: the operator died. Nothing more is mirrored; the tallies stay in the summary.
    const lease = 1500;
    await mirrorCall("PUT", { version: "v2", targets: [shadow.url], sampleRate: 1, expiresAt: new Date(Date.now() + lease).toISOString() });
    await sleep(lease + 100);
    const expired = (await shadowBlock())!;
    await infer("late", fx.seattleHoldout, 20);
    await sleep(500);
    expect((await shadowBlock())!.mirrored).toBe(expired.mirrored);
    expect((await summaryOf(shadow)).totals.requests).toBe(expired.mirrored);
  });

  it("drops the tallies on DELETE, and starts afresh for another version", async () => {
    const del = await fetch(`${serving.monitoringUrl}/v1/mirror`, { method: "DELETE" });
    expect(del.status).toBe(204);
    expect(await mirrorCall("GET")).toEqual({ status: 200, body: { mirror: null } });
    expect((await summaryOf(serving)).shadow).toBeUndefined();
    // A new mirror starts from zero.
    await mirrorCall("PUT", { version: "v2", targets: [shadow.url], sampleRate: 1, expiresAt: inMinutes(2) });
    expect(await shadowBlock()).toMatchObject({ mirrored: 0, rows: 0, pairs: { bothRight: 0, servingOnly: 0, shadowOnly: 0, bothWrong: 0 } });
    await infer("fresh", fx.seattleHoldout, 5);
    const v2 = await shadowWhen((s) => s.mirrored === 5);
    // Another candidate version starts its own tallies.
    const next = await mirrorCall("PUT", { version: "v3", targets: [shadow.url], sampleRate: 1, expiresAt: inMinutes(2) });
    expect((next.body as { mirror: { since: string } }).mirror.since > v2.since).toBe(true);
    expect(await shadowBlock()).toMatchObject({ version: "v3", mirrored: 0, rows: 0 });
    await fetch(`${serving.monitoringUrl}/v1/mirror`, { method: "DELETE" });
  });

  it("adds no latency when the shadow hangs or is gone, and counts what it failed or dropped", async () => {
    const requests = 200;
    const off = await infer("off", fx.seattleHoldout, requests);

    const hangingUrl = `http://127.0.0.1:${(hanging.address() as net.AddressInfo).port}`;
    await mirrorCall("PUT", { version: "v2", targets: [hangingUrl], sampleRate: 1, expiresAt: inMinutes(2) });
    const hung = await infer("hung", fx.seattleHoldout, requests);
    // Large requests (1 MiB of JSON whitespace each) fill the 32 MiB queue behind the hung sends: the rest are dropped.
    const padded = JSON.stringify(inferBody(fx.seattleHoldout.slice(0, 1))).replace(/}$/, `${" ".repeat(1024 * 1024)}}`);
    for (let i = 0; i < 40; i++) {
      const res = await fetch(`${serving.url}/v2/models/weather/infer`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": `big-${i}` },
        body: padded,
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    const blocked = await shadowWhen((s) => s.dropped > 0);
    expect(blocked.mirrored + blocked.dropped).toBe(requests + 40);
    // The hung sends time out (5 s) and count as failed.
    await shadowWhen((s) => s.failed >= 4, 20_000);

    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as net.AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    await fetch(`${serving.monitoringUrl}/v1/mirror`, { method: "DELETE" });
    await mirrorCall("PUT", { version: "v2", targets: [deadUrl], sampleRate: 1, expiresAt: inMinutes(2) });
    const dead = await infer("dead", fx.seattleHoldout, requests);
    const refused = await shadowWhen((s) => s.failed === requests);
    expect(refused).toMatchObject({ mirrored: requests, dropped: 0, rows: 0 });

    const numbers = {
      offP50Ms: quantile(off.ms, 0.5),
      offP99Ms: p99(off.ms),
      hangingP50Ms: quantile(hung.ms, 0.5),
      hangingP99Ms: p99(hung.ms),
      deadP50Ms: quantile(dead.ms, 0.5),
      deadP99Ms: p99(dead.ms),
    };
    console.log(`user p99 latency with ${requests} sequential requests each: ${JSON.stringify(numbers)}`);
    // The typical request is as fast as without a mirror, and none waited for the hanging shadow (that takes the 5 s
    // mirror timeout); the p99s are logged, not compared: on shared cores they move by tens of ms from run to run.
    for (const p50 of [numbers.hangingP50Ms, numbers.deadP50Ms]) expect(p50).toBeLessThan(2 * numbers.offP50Ms + 5);
    expect(Math.max(...hung.ms)).toBeLessThan(2500);
    const metrics = await (await fetch(`${serving.monitoringUrl}/metrics`)).text();
    expect(metrics).toMatch(/ballast_sidecar_mirror_requests_total\{outcome="dropped",modeldeployment="weather"\} [1-9]/);
    expect(metrics).toMatch(/ballast_sidecar_mirror_requests_total\{outcome="failed",modeldeployment="weather"\} [1-9]/);
    await fetch(`${serving.monitoringUrl}/v1/mirror`, { method: "DELETE" });
  });
});

describe("mirroring a regressor", () => {
  const FEATURES = ["precipitation", "temp_min", "wind"] as const;
  let procs: LocalProcess[] = [];
  let servingPair: LocalProcess;
  let shadowPair: { server: LocalProcess; sidecar: LocalProcess };

  const body = (rows: readonly WeatherRow[], id?: string) => ({
    ...(id ? { id } : {}),
    inputs: FEATURES.map((name) => ({ name, shape: [rows.length], datatype: "FP32", data: rows.map((r) => Number(r[name])) })),
  });
  const valuesOf = (res: { body: unknown }) => (res.body as { outputs: { name: string; data: number[] }[] }).outputs.find((o) => o.name === "value")!.data;

  beforeAll(async () => {
    // temp_max from the other columns: two versions that answer differently.
    const store = path.join(fx.dir, "regression-store");
    const regression = { task: "regression" as const, label: "temp_max", features: [...FEATURES], epochs: 3 };
    await trainWeather(store, fx.trainCsv, regression);
    await trainWeather(store, fx.trainCsv, { ...regression, seed: 7, hiddenUnits: [4] });
    const server = await startModelServer(store, ["--version", "v1"]);
    servingPair = await startSidecar(server.url, store, path.join(fx.dir, "regression-serving-log"));
    const candidate = await startModelServer(store, ["--version", "v2"]);
    shadowPair = { server: candidate, sidecar: await startSidecar(candidate.url, store, path.join(fx.dir, "regression-shadow-log")) };
    procs = [servingPair, server, shadowPair.sidecar, candidate];
  }, 240_000);

  afterAll(() => stopAll(procs));

  it("sums both models' differences and pairs each labelled row's absolute errors", async () => {
    const put = await mirrorCall(
      "PUT",
      { version: "v2", targets: [shadowPair.sidecar.url], sampleRate: 1, expiresAt: inMinutes(2) },
      servingPair.monitoringUrl,
    );
    expect(put.status).toBe(200);
    const requests = 30;
    let sumAbsDifference = 0;
    let servingAbsErrorSum = 0;
    let shadowAbsErrorSum = 0;
    const diffs: number[] = [];
    const feedback: { id: string; labels: number[] }[] = [];
    for (let i = 0; i < requests; i++) {
      const rows = fx.seattleHoldout.slice(i * ROWS_PER_REQUEST, (i + 1) * ROWS_PER_REQUEST);
      const id = `reg-${i}`;
      const served = await postJson(`${servingPair.url}/v2/models/weather/infer`, body(rows, id));
      expect(served.status).toBe(200);
      const candidate = valuesOf(await postJson(`${shadowPair.server.url}/v2/models/weather/infer`, body(rows)));
      const labels = rows.map((r) => Number(r.temp_max));
      valuesOf(served).forEach((v, r) => {
        sumAbsDifference += Math.abs(v - candidate[r]!);
        servingAbsErrorSum += Math.abs(v - labels[r]!);
        shadowAbsErrorSum += Math.abs(candidate[r]! - labels[r]!);
        diffs.push(Math.abs(v - labels[r]!) - Math.abs(candidate[r]! - labels[r]!));
      });
      feedback.push({ id, labels });
    }
    expect((await postJson(`${servingPair.url}/v1/feedback`, { feedback })).status).toBe(200);

    const rows = requests * ROWS_PER_REQUEST;
    const s = await shadowWhen((x) => x.pairs.task === "regression" && x.pairs.count === rows, 30_000, servingPair);
    expect(s).toMatchObject({ version: "v2", mirrored: requests, dropped: 0, failed: 0, rows });
    expect(s.agreedRows).toBeLessThan(rows);
    expect(s.sumAbsDifference).toBeCloseTo(sumAbsDifference, 6);
    if (s.pairs.task !== "regression") throw new Error("regression pairs expected");
    expect(s.pairs.servingAbsErrorSum).toBeCloseTo(servingAbsErrorSum, 6);
    expect(s.pairs.shadowAbsErrorSum).toBeCloseTo(shadowAbsErrorSum, 6);
    // Labels that came back before their copy was answered are counted later: compare as sets.
    const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
    sorted(s.pairs.diffs).forEach((d, i) => expect(d).toBeCloseTo(sorted(diffs)[i]!, 9));
    const forwarded = async () => (await summaryOf(shadowPair.sidecar)).totals.feedback;
    for (const deadline = Date.now() + 15_000; (await forwarded()) < rows && Date.now() < deadline;) await sleep(50);
    expect(await forwarded()).toBe(rows);
  });
});
