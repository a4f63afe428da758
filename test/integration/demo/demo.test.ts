// Given a built checkout and the Kubernetes binaries, when a person runs `ballast demo --exit-when-done`
// (what `make demo` runs, minus the wait for Ctrl-C), then they read each step's outcome on stdout: the operator
// Ready in the cluster, the training Job done on the GPU node, the ModelDeployment Ready, Seattle traffic calm and
// New York traffic drifted with accuracy per window; and it exits 0 leaving no process behind.
// The demo starts its own cluster in its own directory, beside the test run's shared one.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageVersion } from "../../../src/cli/version.js";
import { clusterDown } from "../../../src/devcluster/cluster.js";
import { isAlive } from "../../../src/devcluster/processes.js";
import { readState } from "../../../src/devcluster/state.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const ballast = join(repoRoot, "bin/ballast");
const WINDOW_ROWS = 300;

interface DemoRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Every pid state.json recorded while the cluster was up. */
  clusterPids: number[];
}

/** Runs the demo as a person would; reads state.json once the cluster is up (tear-down removes it). */
function runDemo(dir: string, args: string[], timeoutMs: number, interruptAt?: string): Promise<DemoRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(ballast, ["demo", "--dir", dir, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const run: DemoRun = { code: null, stdout: "", stderr: "", clusterPids: [] };
    const timer = setTimeout(() => {
      child.kill("SIGINT");
      reject(new Error(`ballast demo did not finish in ${timeoutMs / 1000} s; output so far:\n${run.stdout}\n${run.stderr}`));
    }, timeoutMs);
    child.stdout.on("data", (chunk: Buffer) => {
      run.stdout += chunk.toString();
      if (run.clusterPids.length === 0 && run.stdout.includes("[2/5]")) run.clusterPids = readState(dir)?.processes.map((p) => p.pid) ?? [];
      // Ctrl-C as a person presses it (once).
      if (interruptAt && run.stdout.includes(interruptAt) && !child.killed) child.kill("SIGINT");
    });
    child.stderr.on("data", (chunk: Buffer) => (run.stderr += chunk.toString()));
    child.on("close", (code) => {
      clearTimeout(timer);
      run.code = code;
      resolve(run);
    });
  });
}

/** Processes whose command line or working directory is inside dir: control plane, local nodes, pod containers. */
function processesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (cmdline.includes(dir) || cwd.startsWith(dir)) found.push(`${pid}: ${cmdline.slice(0, 160)}`);
    } catch {
      // exited while we looked
    }
  }
  return found;
}

/** The lines of one narrated step, from its `[n/5]` header to the next. */
function step(stdout: string, n: number): string {
  const start = stdout.indexOf(`[${n}/5]`);
  expect(start, `step ${n} is narrated`).toBeGreaterThanOrEqual(0);
  const end = stdout.indexOf(`[${n + 1}/5]`, start);
  return stdout.slice(start, end === -1 ? undefined : end);
}

describe("ballast demo --exit-when-done", () => {
  let dir: string;
  let run: DemoRun;

  beforeAll(async () => {
    if (!existsSync(ballast)) throw new Error("bin/ballast is missing: run `make build`");
    dir = mkdtempSync(join(tmpdir(), "ballast-demo-test-"));
    // Few epochs: the test checks the loop, not the model's best accuracy.
    run = await runDemo(dir, ["--exit-when-done", "--epochs", "5"], 480_000);
  }, 500_000);

  afterAll(async () => {
    // Only matters when an assertion failed mid-way: never leave a cluster running.
    if (dir && readState(dir)) await clusterDown(dir);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it("exits 0 after all five steps", () => {
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/Demo finished in \d+\.\d s\./);
  });

  it("starts a local cluster and prints the KUBECONFIG to watch it with, before anything is deployed", () => {
    const one = step(run.stdout, 1);
    expect(one).toMatch(/✓ cluster ready: Kubernetes [\d.]+, .* nodes ballast-cpu-0, ballast-gpu-0/);
    expect(one).toContain(`export KUBECONFIG=${join(dir, "kubeconfig")}`);
  });

  it("deploys the operator with kustomize and it becomes Ready in the cluster under its own ServiceAccount", () => {
    const two = step(run.stdout, 2);
    expect(two).toContain("$ kubectl apply --server-side -k deploy/overlays/local");
    expect(two).toContain("deployment.apps/ballast-operator serverside-applied");
    expect(two).toMatch(
      new RegExp(`✓ operator Ready: pod ballast-operator-\\S+ on node ballast-cpu-0, image ghcr\\.io/ballast-dev/ballast:${packageVersion().replaceAll(".", "\\.")}, ServiceAccount ballast-operator`),
    );
  });

  it("trains the first version in a Job the scheduler put on the GPU node, and shows its holdout metrics", () => {
    const three = step(run.stdout, 3);
    expect(three).toContain("ballast train --data /data/seattle-train.csv");
    expect(three).toContain("--store pvc://ballast-models/store");
    expect(three).toMatch(/✓ Job weather-train-initial completed on node ballast-gpu-0/);
    expect(three).toMatch(/wrote weather\/v1 to pvc:\/\/ballast-models\/store/);
    const accuracy = Number(/holdout metrics .*: accuracy (\d\.\d+)/.exec(three)?.[1]);
    // The majority class (rain or sun) alone scores about 0.44 on Seattle days: the model learned more than that.
    expect(accuracy).toBeGreaterThan(0.6);
  });

  it("serves it with a ModelDeployment that becomes Ready, and shows kubectl get md and the owned objects", () => {
    const four = step(run.stdout, 4);
    expect(four).toContain("✓ ModelDeployment weather Ready");
    expect(four).toMatch(/NAME\s+MODEL\s+VERSION\s+READY\s+DRIFT\s+ACCURACY/);
    expect(four).toMatch(/\n\s+weather\s+weather\s+(v1\s+)?True\s/);
    expect(four).toContain("deployment.apps/weather-serving   1/1");
    expect(four).toMatch(/pod\/weather-serving-\S+\s+2\/2\s+Running/);
  });

  it("shows the Seattle window calm and the New York window drifted, with accuracy from the fed-back labels", () => {
    const five = step(run.stdout, 5);
    const seattle = new RegExp(`Seattle window: ${WINDOW_ROWS} rows, .*accuracy (\\d\\.\\d+) on ${WINDOW_ROWS} labelled rows.*\\n\\s+drift: none — (\\d) of 4 features drifted`).exec(five);
    const newYork = new RegExp(`New York window: ${WINDOW_ROWS} rows, .*accuracy (\\d\\.\\d+) on ${WINDOW_ROWS} labelled rows.*\\n\\s+drift: DRIFT — (\\d) of 4 features drifted \\(([^)]*)\\)`).exec(five);
    expect(seattle, five).not.toBeNull();
    expect(newYork, five).not.toBeNull();
    expect(Number(newYork![2])).toBeGreaterThanOrEqual(2);
    // New York days are colder in winter and hotter in summer than Seattle's.
    expect(newYork![3]).toContain("temp_min");
    // The accuracy the sidecar computed from feedback equals what the client counted from the answers it got.
    const clientSide = [...five.matchAll(/the answers were right for \d+ \((\d\.\d+)\)/g)].map((m) => m[1]);
    expect(clientSide).toEqual([seattle![1], newYork![1]]);
    expect(five).toMatch(/\$ kubectl get events .*involvedObject\.name=weather/);
  });

  it("tears the cluster down: every process it started is gone", () => {
    expect(run.stdout).toContain(`Tearing down the local cluster in ${dir}`);
    expect(run.clusterPids.length).toBeGreaterThanOrEqual(5);
    expect(run.clusterPids.filter((pid) => isAlive(pid))).toEqual([]);
    expect(processesUnder(dir)).toEqual([]);
    expect(readState(dir)).toBeUndefined();
  });
});

describe("Ctrl-C during the demo", () => {
  it("stops at once, tears down the cluster it started and exits 130", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ballast-demo-int-"));
    try {
      const run = await runDemo(dir, [], 180_000, "[2/5]");
      expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(130);
      expect(run.stdout).toContain("✗ interrupted during step 2");
      expect(run.stdout).toContain(`Tearing down the local cluster in ${dir}`);
      expect(run.clusterPids.length).toBeGreaterThanOrEqual(5);
      expect(run.clusterPids.filter((pid) => isAlive(pid))).toEqual([]);
      expect(processesUnder(dir)).toEqual([]);
    } finally {
      if (readState(dir)) await clusterDown(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 200_000);
});

describe("ballast demo refuses a directory it would wipe", () => {
  it("exits 2 naming --dir when the directory holds something other than a cluster, and leaves it alone", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ballast-demo-notes-"));
    mkdirSync(join(dir, "mine"));
    writeFileSync(join(dir, "notes.txt"), "keep me\n");
    try {
      const run = await runDemo(dir, ["--exit-when-done"], 30_000);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain(`--dir ${dir} is not empty and holds no local cluster`);
      expect(readFileSync(join(dir, "notes.txt"), "utf8")).toBe("keep me\n");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
