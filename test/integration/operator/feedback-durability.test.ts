// Given the local cluster, the operator and a weather model in a PVC store, a user sends traffic and feedback to a
// ModelDeployment's pods while a sidecar is killed with kill -9, the pods roll to a new template and scale to 0:
// every label a sidecar acknowledged (2xx) is afterwards in the training data `ballast train` reads from
// <store>/weather/_log/<pod>/, one sealed directory per pod that ever served.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { stringify } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inferRequest } from "../../../src/demo/traffic.js";
import { loadWeatherDays, splitWeather, weatherCsv, WEATHER_FEATURES, type WeatherDay } from "../../../src/demo/weather-data.js";
import { containerDir, podDir } from "../../../src/devcluster/pod-dirs.js";
import { LOCK_FILE } from "../../../src/runtime/log-lock.js";
import { joinLog, listSegments, podLogDirectories } from "../../../src/runtime/request-log.js";
import { clusterDir, createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import { BALLAST, applyYaml, createLocalClaim, installCrdAndRbac, kubectlJson, startNamespacedOperator, trainInto } from "./operator-process.js";

const CLAIM = "models";
const ROWS_PER_REQUEST = 2;

interface ServingPod {
  name: string;
  uid: string;
  url: string;
  sidecarRestarts: number;
}

interface PodList {
  items: {
    metadata: { name: string; uid: string; deletionTimestamp?: string };
    status: { podIP?: string; conditions?: { type: string; status: string }[]; containerStatuses?: { name: string; restartCount: number }[] };
  }[];
}

describe("ballast operator: acknowledged feedback is durable training data", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let stop: (() => Promise<number | null>) | undefined;
  let storeDir: string;
  const days = splitWeather(loadWeatherDays(), 300, 300);
  const traffic = [...days.seattleTraffic, ...days.newYorkTraffic];
  let next = 0;
  /** `${id}/${row}` → label, for every row whose feedback a sidecar answered 2xx. */
  const acked = new Map<string, string>();
  const podsSeen = new Set<string>();

  async function servingPods(): Promise<ServingPod[]> {
    const list = await kubectlJson<PodList>(["get", "pods", "-n", ns.name, "-l", "ballast.dev/model-deployment=weather"]);
    return list.items
      .filter((p) => !p.metadata.deletionTimestamp && p.status.podIP && p.status.conditions?.some((c) => c.type === "Ready" && c.status === "True"))
      .map((p) => ({
        name: p.metadata.name,
        uid: p.metadata.uid,
        url: `http://${p.status.podIP}:8080`,
        sidecarRestarts: p.status.containerStatuses?.find((c) => c.name === "sidecar")?.restartCount ?? 0,
      }));
  }

  async function readyPods(count: number, what: string, timeoutMs = 120_000): Promise<ServingPod[]> {
    const pods = await waitFor(
      what,
      async () => {
        const ready = await servingPods();
        const all = await kubectlJson<PodList>(["get", "pods", "-n", ns.name, "-l", "ballast.dev/model-deployment=weather"]);
        return ready.length === count && all.items.length === count ? ready : undefined;
      },
      timeoutMs,
      500,
    );
    for (const p of pods) podsSeen.add(p.name);
    return pods;
  }

  async function post(url: string, body: unknown): Promise<{ status: number; body: unknown }> {
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  }

  /** One predicted request of ROWS_PER_REQUEST rows; answers its id and the true labels. */
  async function infer(pod: ServingPod): Promise<{ id: string; labels: string[] }> {
    const rows: WeatherDay[] = [];
    for (let r = 0; r < ROWS_PER_REQUEST; r++) rows.push(traffic[next++ % traffic.length]!);
    const id = `${pod.name}-r${next}`;
    const res = await post(`${pod.url}/v2/models/weather/infer`, inferRequest(rows, id));
    if (res.status !== 200) throw new Error(`infer on ${pod.name} answered ${res.status}: ${JSON.stringify(res.body)}`);
    return { id, labels: rows.map((d) => d.weather) };
  }

  /** Sends the labels; records them as acknowledged only on 2xx (a connection reset is no acknowledgement). */
  async function feedback(pod: ServingPod, req: { id: string; labels: string[] }): Promise<boolean> {
    let status: number;
    try {
      status = (await post(`${pod.url}/v1/feedback`, { id: req.id, labels: req.labels })).status;
    } catch {
      return false;
    }
    if (status < 200 || status >= 300) return false;
    req.labels.forEach((label, row) => acked.set(`${req.id}/${row}`, label));
    return true;
  }

  async function trafficWithFeedback(pod: ServingPod, requests: number): Promise<void> {
    for (let i = 0; i < requests; i++) expect(await feedback(pod, await infer(pod))).toBe(true);
  }

  const logRoot = () => join(storeDir, "weather", "_log");

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("op-durable");
    storeDir = join(await createLocalClaim(ns.name, CLAIM), "store");
    const csv = join(mkdtempSync(join(tmpdir(), "op-durable-")), "seattle.csv");
    writeFileSync(csv, weatherCsv(days.seattleTraining));
    trainInto(storeDir, csv, ["--model", "weather", "--version", "v1", "--label", "weather", "--features", WEATHER_FEATURES.join(","), "--epochs", "2"]);
    ({ stop } = await startNamespacedOperator(ns));
    await applyYaml(
      stringify({
        apiVersion: "ballast.dev/v1alpha1",
        kind: "ModelDeployment",
        metadata: { name: "weather", namespace: ns.name },
        spec: {
          model: { name: "weather", storageUri: `pvc://${CLAIM}/store`, version: "v1" },
          serving: { replicas: 2, port: 8080 },
          // Windows never close here: this test is about the log, not about the policy.
          monitoring: {
            task: "classification",
            labelField: "weather",
            features: WEATHER_FEATURES.map((f) => ({ name: f, type: "numeric" })),
            window: { size: 100_000 },
          },
        },
      }),
    );
  });

  afterAll(async () => {
    if (stop) expect(await stop()).toBe(0);
    else await ns?.remove();
  });

  it("two replicas take traffic and feedback at once, each logging under <store>/weather/_log/<its pod>/", async () => {
    const pods = await readyPods(2, "2 serving pods Ready");
    await Promise.all(pods.map((p) => trafficWithFeedback(p, 20)));
    expect((await podLogDirectories(logRoot())).map((d) => basename(d)).sort()).toEqual(pods.map((p) => p.name).sort());
    for (const p of pods) expect(JSON.parse(readFileSync(join(logRoot(), p.name, LOCK_FILE), "utf8"))).toMatchObject({ pod: p.name });
  });

  it("a sidecar killed with kill -9 mid-feedback restarts in the same pod, takes its directory over and goes on", async () => {
    const [victim, other] = await servingPods();
    const requests: { id: string; labels: string[] }[] = [];
    for (let i = 0; i < 60; i++) requests.push(await infer(victim!));
    const pidFile = join(containerDir(podDir(clusterDir(), ns.name, victim!.name, victim!.uid), "sidecar"), "pid");
    const pid = Number(readFileSync(pidFile, "utf8"));
    let sent = 0;
    let ackedHere = 0;
    let killed = false;
    // Four labellers at once, and the other replica busy too; kill -9 once a third is acknowledged.
    const labeller = async (): Promise<void> => {
      while (sent < requests.length) {
        if (await feedback(victim!, requests[sent++]!)) ackedHere++;
        if (!killed && ackedHere >= requests.length / 3) {
          killed = true;
          process.kill(pid, "SIGKILL");
        }
      }
    };
    await Promise.all([labeller(), labeller(), labeller(), labeller(), trafficWithFeedback(other!, 20)]);
    expect(killed).toBe(true);
    expect(ackedHere).toBeLessThan(requests.length);

    const restarted = await waitFor(
      "the killed sidecar restarted and Ready",
      async () => {
        const pod = (await servingPods()).find((p) => p.name === victim!.name);
        return pod && pod.sidecarRestarts >= 1 ? pod : undefined;
      },
      90_000,
      500,
    );
    const log = readFileSync(join(containerDir(podDir(clusterDir(), ns.name, victim!.name, victim!.uid), "sidecar"), "1.log"), "utf8");
    expect(log).toContain('"event":"log-takeover"');
    // The segment the crash left open is sealed; the restarted sidecar writes a new one in the same directory.
    const segments = await listSegments(join(logRoot(), victim!.name));
    expect(segments.at(-1)!.sealed).toBe(false);
    expect(segments.slice(0, -1).every((s) => s.sealed)).toBe(true);
    await trafficWithFeedback(restarted, 10);
  });

  it("a rollout to a new pod template leaves the old pods' directories sealed and readable, with feedback sent while they drained", async () => {
    const old = await servingPods();
    const patch = await kubectl(["patch", "md", "weather", "-n", ns.name, "--type", "merge", "-p", '{"spec":{"monitoring":{"window":{"size":99999}}}}']);
    expect(patch.code).toBe(0);
    // Keep labelling an old pod until it is gone: what it acknowledged while terminating counts too.
    let rolling = true;
    const drainTraffic = (async () => {
      while (rolling) {
        try {
          await feedback(old[0]!, await infer(old[0]!));
        } catch {
          return; // its server stopped answering: the pod is going away
        }
        await sleep(50);
      }
    })();
    const fresh = await waitFor(
      "2 new pods Ready and the old ones gone",
      async () => {
        const list = await kubectlJson<PodList>(["get", "pods", "-n", ns.name, "-l", "ballast.dev/model-deployment=weather"]);
        const ready = await servingPods();
        const renewed = ready.filter((p) => !old.some((o) => o.name === p.name));
        return list.items.length === 2 && renewed.length === 2 ? renewed : undefined;
      },
      240_000,
      1000,
    );
    rolling = false;
    await drainTraffic;
    for (const p of fresh) podsSeen.add(p.name);
    for (const o of old) {
      const dir = join(logRoot(), o.name);
      expect(existsSync(join(dir, LOCK_FILE)), `${o.name} released its directory`).toBe(false);
      expect((await listSegments(dir)).every((s) => s.sealed)).toBe(true);
    }
    await Promise.all(fresh.map((p) => trafficWithFeedback(p, 10)));
  });

  it("after scaling to 0, every acknowledged label is in the training data `ballast train` reads from every pod's directory", async () => {
    expect((await kubectl(["patch", "md", "weather", "-n", ns.name, "--type", "merge", "-p", '{"spec":{"serving":{"replicas":0}}}'])).code).toBe(0);
    await waitFor(
      "no serving pods left",
      async () => (await kubectlJson<PodList>(["get", "pods", "-n", ns.name, "-l", "ballast.dev/model-deployment=weather"])).items.length === 0,
      120_000,
      500,
    );

    const dirs = await podLogDirectories(logRoot());
    expect(dirs.map((d) => basename(d)).sort()).toEqual([...podsSeen].sort());
    const logged = new Map<string, string | number>();
    for (const dir of dirs) {
      expect(existsSync(join(dir, LOCK_FILE)), `${basename(dir)} released its directory`).toBe(false);
      expect((await listSegments(dir)).every((s) => s.sealed)).toBe(true);
      const joined = await joinLog(dir);
      expect(joined.problems).toEqual([]);
      for (const r of joined.rows) logged.set(`${r.id}/${r.row}`, r.label);
    }
    const missing = [...acked].filter(([key, label]) => logged.get(key) !== label);
    expect(missing).toEqual([]);
    expect(acked.size).toBeGreaterThanOrEqual(200);

    // What the retraining Job runs: `ballast train` on every pod's directory.
    const train = spawnSync(
      BALLAST,
      [
        "train",
        ...dirs.flatMap((d) => ["--data", `sidecar-log://${d}`]),
        "--store",
        `file://${storeDir}`,
        "--model",
        "weather",
        "--from-version",
        "v1",
        "--version",
        "v2",
        "--epochs",
        "1",
      ],
      { encoding: "utf8" },
    );
    expect(train.status, train.stderr).toBe(0);
    expect((JSON.parse(train.stdout) as { rows: number }).rows).toBe(logged.size);
  });
});
