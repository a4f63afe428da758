// Crash safety: feedback the sidecar acknowledged survives `kill -9`, and a restarted sidecar picks up where it was.
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { joinLog } from "../../../src/runtime/request-log.js";
import { postJson, startModelServer, startSidecar, stopAll, type LocalProcess } from "./local-processes.js";
import { inferBody, weatherFixture, type WeatherFixture } from "./weather-fixture.js";

const REQUESTS = 240;
const CONCURRENCY = 8;

let fx: WeatherFixture;
let server: LocalProcess;
let sidecar: LocalProcess | undefined;
let dataDir: string;

beforeAll(async () => {
  fx = await weatherFixture({ epochs: 2 });
  dataDir = path.join(fx.dir, "log");
  server = await startModelServer(fx.storeDir);
}, 120_000);

afterAll(async () => {
  await stopAll([sidecar, server]);
  fx?.cleanup();
});

describe("ballast sidecar crash safety", () => {
  it("keeps every acknowledged feedback across kill -9 mid-stream", async () => {
    sidecar = await startSidecar(server.url, fx.storeDir, dataDir);
    const rows = [...fx.seattleHoldout, ...fx.newYork];
    const labels = new Map<string, string>();
    for (let i = 0; i < REQUESTS; i++) {
      const row = rows[i % rows.length]!;
      const res = await postJson(`${sidecar.url}/v2/models/weather/infer`, inferBody([row], `req-${i}`));
      expect(res.status).toBe(200);
      labels.set(`req-${i}`, row.weather);
    }

    // Feedback from several concurrent clients; kill -9 once a third of it is acknowledged.
    const acked = new Set<string>();
    const unacked = new Set<string>();
    let next = 0;
    let killed = false;
    const victim = sidecar;
    const client = async (): Promise<void> => {
      while (next < REQUESTS) {
        const id = `req-${next++}`;
        try {
          const res = await postJson(`${victim.url}/v1/feedback`, { id, label: labels.get(id) });
          if (res.status === 200) acked.add(id);
          else unacked.add(id);
        } catch {
          unacked.add(id); // connection reset by the kill: not acknowledged
        }
        if (!killed && acked.size >= REQUESTS / 3) {
          killed = true;
          victim.child.kill("SIGKILL");
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, client));
    expect(await victim.exited).toBe(null);
    expect(victim.child.signalCode).toBe("SIGKILL");
    expect(acked.size).toBeGreaterThanOrEqual(REQUESTS / 3);
    expect(unacked.size).toBeGreaterThan(0);

    // Every acknowledged label is in the log, with the right value.
    const joined = await joinLog(dataDir);
    const logged = new Map(joined.rows.map((r) => [r.id, r.label]));
    for (const id of acked) expect(logged.get(id), id).toBe(labels.get(id));

    // A restarted sidecar on the same volume knows what was labelled and what was not.
    sidecar = await startSidecar(server.url, fx.storeDir, dataDir);
    const [oneAcked] = acked;
    const again = await postJson(`${sidecar.url}/v1/feedback`, { id: oneAcked, label: labels.get(oneAcked!) });
    expect(again.status).toBe(409);
    const notYet = [...unacked].find((id) => !logged.has(id));
    if (notYet) {
      // Its inference record became durable with the first acknowledged feedback, so it is still joinable.
      const late = await postJson(`${sidecar.url}/v1/feedback`, { id: notYet, label: labels.get(notYet) });
      expect(late.status).toBe(200);
    }
    const restarted = sidecar.lines.find((l) => l.includes('"event":"monitoring"'));
    expect(JSON.parse(restarted!).trackedRequests).toBeGreaterThanOrEqual(REQUESTS);
  });

  it("on SIGTERM finishes, writes every buffered inference record and exits 0", async () => {
    const dir = path.join(fx.dir, "graceful");
    const own = await startSidecar(server.url, fx.storeDir, dir);
    for (let i = 0; i < 5; i++) expect((await postJson(`${own.url}/v2/models/weather/infer`, inferBody([fx.newYork[i]!], `g-${i}`))).status).toBe(200);
    expect(await own.stop("SIGTERM")).toBe(0);
    const joined = await joinLog(dir);
    expect(joined.inferenceRows).toBe(5);
  });
});
