// `ballast dev up` / `down` as a person uses them: up returns a working cluster, down (also after an
// interrupted up or a crashed node agent) leaves no process and no listening port behind.
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { isListening } from "../../../src/devcluster/ports.js";
import { isAlive } from "../../../src/devcluster/processes.js";
import { readState, type ClusterState } from "../../../src/devcluster/state.js";
import { waitFor } from "../../support/cluster.js";

const ballast = new URL("../../../bin/ballast", import.meta.url).pathname;
const dirs: string[] = [];
const newDir = () => {
  const d = mkdtempSync(join(tmpdir(), "ballast-lifecycle-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) {
    spawnSync(ballast, ["dev", "down", "--dir", d, "--purge"]);
    rmSync(d, { recursive: true, force: true });
  }
});

async function expectNothingLeft(state: ClusterState, extraPids: number[] = []): Promise<void> {
  for (const p of state.processes) expect(isAlive(p.pid), `${p.name} (pid ${p.pid}) still running`).toBe(false);
  for (const pid of extraPids) expect(isAlive(pid), `pod process ${pid} still running`).toBe(false);
  for (const [name, port] of Object.entries(state.ports)) expect(await isListening(port), `${name} port ${port} still open`).toBe(false);
}

describe("ballast dev up / down", () => {
  it("up prints an export line for a working cluster; down stops every process and closes every port", async () => {
    const dir = newDir();
    const up = spawnSync(ballast, ["dev", "up", "--dir", dir, "--nodes", "1", "--gpu-nodes", "0"], { encoding: "utf8", timeout: 120_000 });
    expect(up.status, up.stderr).toBe(0);
    expect(up.stdout.trim()).toBe(`export KUBECONFIG=${join(dir, "kubeconfig")}`);
    const kc = new KubeConfig();
    kc.loadFromFile(join(dir, "kubeconfig"));
    const nodes = await kc.makeApiClient(CoreV1Api).listNode();
    expect(nodes.items.map((n) => n.metadata?.name)).toEqual(["ballast-cpu-0"]);

    const status = spawnSync(ballast, ["dev", "status", "--dir", dir], { encoding: "utf8" });
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/running/);
    expect(status.stdout).toMatch(/ballast-cpu-0\s+Ready/);

    const state = readState(dir)!;
    const down = spawnSync(ballast, ["dev", "down", "--dir", dir], { encoding: "utf8", timeout: 120_000 });
    expect(down.status, down.stderr).toBe(0);
    expect(down.stdout).toContain("stopped local-nodes, kube-scheduler, kube-controller-manager, kube-apiserver, etcd");
    await expectNothingLeft(state);
    expect(spawnSync(ballast, ["dev", "status", "--dir", dir]).status).toBe(1);
  });

  it("an up interrupted with Ctrl-C stops what it had started", async () => {
    const dir = newDir();
    const up = spawn(ballast, ["dev", "up", "--dir", dir], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    up.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    const recorded = await waitFor(
      "up to have started the API server",
      async () => {
        const s = readState(dir);
        return s && s.processes.length >= 2 ? s : undefined;
      },
      60_000,
      50,
    );
    up.kill("SIGINT");
    const code = await new Promise<number | null>((r) => up.once("exit", r));
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/interrupted/);
    await expectNothingLeft(recorded);
  });

  it("down stops pod processes even when the node agent was killed with SIGKILL", async () => {
    const dir = newDir();
    const up = spawnSync(ballast, ["dev", "up", "--dir", dir, "--gpu-nodes", "0"], { encoding: "utf8", timeout: 120_000 });
    expect(up.status, up.stderr).toBe(0);
    const state = readState(dir)!;
    const kc = new KubeConfig();
    kc.loadFromFile(state.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespacedPod({
      namespace: "default",
      body: {
        metadata: { name: "sleeper" },
        spec: { containers: [{ name: "job", image: "ghcr.io/ballast-dev/ballast:any", args: ["dev", "job", "--seconds", "600"] }] },
      },
    });
    const pod = await waitFor("sleeper running", async () => {
      const p = await core.readNamespacedPod({ name: "sleeper", namespace: "default" });
      return p.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
    });
    const podPid = Number(pod.status!.containerStatuses![0]!.containerID!.replace("ballast-local://", ""));
    expect(isAlive(podPid)).toBe(true);
    process.kill(state.processes.find((p) => p.name === "local-nodes")!.pid, "SIGKILL");
    await sleep(200);
    expect(isAlive(podPid)).toBe(true);
    const down = spawnSync(ballast, ["dev", "down", "--dir", dir, "--purge"], { encoding: "utf8", timeout: 120_000 });
    expect(down.status, down.stderr).toBe(0);
    expect(down.stdout).toContain(`pod process ${podPid}`);
    await expectNothingLeft(state, [podPid]);
    expect(existsSync(dir)).toBe(false);
  });
});
