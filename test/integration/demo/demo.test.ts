// Given a built checkout and the Kubernetes binaries, when a person runs `ballast demo --exit-when-done`
// (what `make demo` runs, minus the wait for Ctrl-C), then they read each step's outcome on stdout: the operator
// Ready in the cluster, the first versions trained by Jobs on the GPU node, the weather ModelDeployment Ready,
// Seattle traffic calm and New York traffic drifted yet judged by its labels (no retraining Job); then the closed
// loop on penguins: Gentoo birds degrade the model, the operator's Job retrains it on the GPU node, the gate passes,
// the candidate is shadowed on mirrored live requests and wins pair by pair, is promoted and accuracy recovers; each
// window shows its label-free estimate beside its accuracy; Prometheus, started with the cluster, answers PromQL
// about the penguin model; and it exits 0 leaving no process behind.
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
const STEPS = 10;
/** The demo's penguin windows (closed-loop.ts). */
const PENGUIN_WINDOW = 20;

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
      if (run.clusterPids.length === 0 && run.stdout.includes(`[2/${STEPS}]`)) run.clusterPids = readState(dir)?.processes.map((p) => p.pid) ?? [];
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

/** The lines of one narrated step, from its `[n/8]` header to the next. */
function step(stdout: string, n: number): string {
  const start = stdout.indexOf(`[${n}/${STEPS}]`);
  expect(start, `step ${n} is narrated`).toBeGreaterThanOrEqual(0);
  const end = stdout.indexOf(`[${n + 1}/${STEPS}]`, start);
  return stdout.slice(start, end === -1 ? undefined : end);
}

describe("ballast demo --exit-when-done", () => {
  let dir: string;
  let run: DemoRun;

  beforeAll(async () => {
    if (!existsSync(ballast)) throw new Error("bin/ballast is missing: run `make build`");
    dir = mkdtempSync(join(tmpdir(), "ballast-demo-test-"));
    // Few epochs for the weather model: the test checks the story, not its best accuracy.
    run = await runDemo(dir, ["--exit-when-done", "--epochs", "5"], 600_000);
  }, 620_000);

  afterAll(async () => {
    // Only matters when an assertion failed mid-way: never leave a cluster running.
    if (dir && readState(dir)) await clusterDown(dir);
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it("exits 0 after all ten steps", () => {
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/Demo finished in \d+\.\d s\./);
  });

  it("starts a local cluster and prints the KUBECONFIG to watch it with, before anything is deployed", () => {
    const one = step(run.stdout, 1);
    expect(one).toMatch(/✓ cluster ready: Kubernetes [\d.]+, .* nodes ballast-cpu-0, ballast-gpu-0; Prometheus http:\/\/127\.0\.0\.1:\d+/);
    expect(one).toContain(`export KUBECONFIG=${join(dir, "kubeconfig")}`);
  });

  it("deploys the operator with kustomize and it becomes Ready in the cluster under its own ServiceAccount", () => {
    const two = step(run.stdout, 2);
    expect(two).toContain("$ kubectl apply --server-side -k deploy/overlays/local");
    expect(two).toContain("deployment.apps/ballast-operator serverside-applied");
    expect(two).toMatch(
      new RegExp(
        `✓ operator Ready: pod ballast-operator-\\S+ on node ballast-cpu-0, image ghcr\\.io/ballast-dev/ballast:${packageVersion().replaceAll(".", "\\.")}, ServiceAccount ballast-operator`,
      ),
    );
  });

  it("trains the first versions in Jobs the scheduler put on the GPU node, and shows their holdout metrics", () => {
    const three = step(run.stdout, 3);
    expect(three).toContain("ballast train --data /data/seattle-train.csv");
    expect(three).toContain("--store pvc://ballast-models/store");
    expect(three).toContain("ballast train --data pvc://ballast-models/data/penguins-train.csv");
    expect(three).toMatch(/✓ Job weather-train-initial completed on node ballast-gpu-0/);
    expect(three).toMatch(/✓ Job penguins-train-initial completed on node ballast-gpu-0/);
    expect(three).toMatch(/wrote weather\/v1 to pvc:\/\/ballast-models\/store/);
    expect(three).toMatch(/wrote penguin-sex\/v1 to pvc:\/\/ballast-models\/store/);
    const accuracy = Number(/holdout metrics \(Seattle[^)]*\): accuracy (\d\.\d+)/.exec(three)?.[1]);
    // The majority class (rain or sun) alone scores about 0.44 on Seattle days: the model learned more than that.
    expect(accuracy).toBeGreaterThan(0.6);
  });

  it("serves it with a ModelDeployment that becomes Ready, and shows kubectl get md and the owned objects", () => {
    const four = step(run.stdout, 4);
    expect(four).toContain("✓ ModelDeployment weather Ready");
    expect(four).toMatch(/NAME\s+MODEL\s+VERSION\s+READY\s+PHASE\s+DRIFT\s+ACCURACY/);
    expect(four).toMatch(/\n\s+weather\s+weather\s+(v1\s+)?True\s/);
    expect(four).toContain("deployment.apps/weather-serving   1/1");
    expect(four).toMatch(/pod\/weather-serving-\S+\s+2\/2\s+Running/);
  });

  it("shows the Seattle window calm and the New York window drifted, with accuracy from the fed-back labels", () => {
    const five = step(run.stdout, 5);
    const seattle = new RegExp(
      `Seattle window: ${WINDOW_ROWS} rows, .*accuracy (\\d\\.\\d+) on ${WINDOW_ROWS} labelled rows.*\\n\\s+drift: none — (\\d) of 4 features drifted`,
    ).exec(five);
    const newYork = new RegExp(
      `New York window: ${WINDOW_ROWS} rows, .*accuracy (\\d\\.\\d+) on ${WINDOW_ROWS} labelled rows.*\\n\\s+drift: DRIFT — (\\d) of 4 features drifted \\(([^)]*)\\)`,
    ).exec(five);
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

  it("reports New York's drift (DriftDetected) but judges the window by its labels: Healthy, no retraining Job for the weather model", () => {
    const five = step(run.stdout, 5);
    expect(five).toMatch(/status\.lastMetrics: .*verdict Healthy, decided by labels/);
    expect(five).toMatch(/condition DriftDetected=True \(DriftAboveThreshold\): .*not a violation by itself/);
    expect(five).toMatch(/\$ kubectl get jobs -n default -l ballast\.dev\/model-deployment=weather\n\s+No resources found/);
    expect(five).toMatch(/✓ New York: DriftDetected=True .*judged by its \d+ labels: accuracy \d\.\d+ ≥ policy\.minAccuracy 0\.6 → Healthy; no retraining Job/);
    expect(five).toMatch(/why: policy\.triggerOn is auto/);
    expect(run.stdout).not.toMatch(/weather-retrain-/);
  });

  it("closes the loop on penguins: Gentoo birds degrade the model, the operator retrains it on the GPU node, the gate passes", () => {
    const six = step(run.stdout, 6);
    expect(six).toMatch(/✓ ModelDeployment penguins Ready, serving penguin-sex\/v1/);
    expect(six).toContain(`promotion.shadow on: minPairs ${PENGUIN_WINDOW}, minLabelledPairs ${PENGUIN_WINDOW}, maxDuration 2m`);
    // Each window: the accuracy its labels give, beside the label-free estimate of it.
    expect(six).toMatch(
      new RegExp(
        `window 1, familiar birds: .*\\n\\s+judged: ${PENGUIN_WINDOW} rows, \\d+ labelled, accuracy \\d\\.\\d+ \\(estimated \\d\\.\\d+ without labels\\), .*→ Healthy`,
      ),
    );
    const seven = step(run.stdout, 7);
    const degraded = [
      ...seven.matchAll(
        new RegExp(`judged: ${PENGUIN_WINDOW} rows, \\d+ labelled, accuracy (\\d\\.\\d+) \\(estimated \\d\\.\\d+ without labels\\), .*→ Violated`, "g"),
      ),
    ].map((m) => Number(m[1]));
    expect(degraded).toHaveLength(2);
    for (const a of degraded) expect(a).toBeLessThan(0.75);
    expect(seven).toMatch(/the operator started Job penguins-retrain-1/);
    expect(seven).toMatch(/the scheduler placed pod penguins-retrain-1-\S+ on node ballast-gpu-0/);
    expect(seven).toMatch(
      /ballast train --store pvc:\/\/ballast-models\/store --model penguin-sex --from-version v1 .*--feedback pvc:\/\/ballast-models\/store\/penguin-sex\/_log/,
    );
    expect(seven).toMatch(/✓ Job penguins-retrain-1 completed on node ballast-gpu-0/);
    const gate = /✓ gate passed: (r1-\w+) accuracy (\d\.\d+) vs (\d\.\d+) on (\d+) recent holdout rows/.exec(seven);
    expect(gate, seven).not.toBeNull();
    expect(Number(gate![2]) - Number(gate![3])).toBeGreaterThanOrEqual(0.05);
    expect(seven).toMatch(/forgetting check: .*rows: \d\.\d+ vs \d\.\d+/);
    expect(seven).toMatch(/latency: candidate\/serving ms per row \d+\.\d+/);
  });

  it("shadows the candidate on mirrored live requests and prints the paired verdict: pairs, agreement, both accuracies, McNemar p-value, error rates, p99 latencies", () => {
    const eight = step(run.stdout, 8);
    expect(eight).toMatch(/✓ the serving pods mirror every request to the shadow of r1-\w+/);
    const pairs = /candidate (r1-\w+): Passed; (\d+) pairs, (\d+) labelled, agreement (\d\.\d+)/.exec(eight);
    expect(pairs, eight).not.toBeNull();
    expect(Number(pairs![2])).toBeGreaterThanOrEqual(PENGUIN_WINDOW);
    expect(Number(pairs![3])).toBeGreaterThanOrEqual(PENGUIN_WINDOW);
    const accuracy = /accuracy on the labelled pairs: candidate (\d\.\d+) vs serving (\d\.\d+) \(improvement \+\d\.\d+\); McNemarExact p-value (\d\.\d+)/.exec(
      eight,
    );
    expect(accuracy, eight).not.toBeNull();
    // On Gentoo birds the candidate beats the serving version on the very same requests.
    expect(Number(accuracy![1]) - Number(accuracy![2])).toBeGreaterThanOrEqual(0.05);
    expect(eight).toMatch(/error rate: candidate \d\.\d+ vs serving \d\.\d+; p99 latency: candidate [\d.]+ ms vs serving [\d.]+ ms/);
    expect(eight).toMatch(new RegExp(`✓ shadow passed: accuracy ${accuracy![1]} vs ${accuracy![2]} on the same \\d+ labelled requests`));
  });

  it("promotes the candidate, and on more Gentoo birds accuracy recovers and the promotion becomes final", () => {
    const eight = step(run.stdout, 9);
    const promoted = /✓ promoted: status\.targetVersion (r1-\w+) \(previousVersion v1\); the Deployment pins --version (r1-\w+)/.exec(eight);
    expect(promoted, eight).not.toBeNull();
    expect(promoted![2]).toBe(promoted![1]);
    const recovered = /✓ accuracy recovered: (\d\.\d+) and (\d\.\d+) on Gentoo birds with (r1-\w+)/.exec(eight);
    expect(recovered, eight).not.toBeNull();
    expect(Number(recovered![1])).toBeGreaterThanOrEqual(0.75);
    expect(Number(recovered![2])).toBeGreaterThanOrEqual(0.75);
    expect(recovered![3]).toBe(promoted![1]);
    expect(eight).toContain("the promotion is final (loop Stable");
    for (const reason of ["RetrainingStarted", "CandidatePassed", "ShadowStarted", "Promoted", "ObservationPassed"])
      expect(eight).toMatch(new RegExp(`Normal\\s+${reason}\\s+modeldeployment/penguins`));
    // The story as `ballast history` tells it: both versions, the promotion, the Job.
    const story = eight.slice(eight.indexOf("$ ballast history penguins -n default"));
    expect(story, eight).toMatch(/VERSION\s+FIRST SEEN\s+LAST STEP/);
    expect(story).toMatch(new RegExp(`Promoted\\s+${promoted![1]}`));
    expect(story).toMatch(/penguins-retrain-1\s+Complete/);
    expect(story).toContain("LAST SHADOW");
    expect(story).toMatch(new RegExp(`candidate ${promoted![1]}: Passed; \\d+ pairs`));
    expect(story).toMatch(/ENDED\s+VERSION\s+ROWS\s+LABELLED\s+ACCURACY\s+ESTIMATED/);
    // One Job for the whole story.
    expect(eight).toMatch(/\n\s+penguins-retrain-1\s+Complete\s+1\/1/);
    expect(eight).not.toMatch(/penguins-retrain-2/);
    // The timeline: a calm window, two degraded ones on v1, one more on v1 while the shadow is judged, two recovered
    // ones on the candidate; each with the label-free estimate and its distance from the labels' accuracy.
    const table = eight.slice(eight.indexOf("WINDOW  ENDED (UTC)"));
    expect(table).toMatch(/^WINDOW\s+ENDED \(UTC\)\s+BIRDS\s+ROWS\s+LABELLED\s+ACCURACY\s+ESTIMATED\s+\|ERROR\|\s+DRIFT/);
    const rows = table
      .split("\n")
      .slice(1, 7)
      .map((l) => l.trim().split(/\s+/));
    expect(rows.map((r) => [r[2], r[9], r[11]])).toEqual([
      ["familiar", "Healthy", "Stable"],
      ["Gentoo", "Violated", "Stable"],
      ["Gentoo", "Violated", "Training"],
      ["Gentoo", "Violated", expect.stringMatching(/^(Promoting|Observing)$/)],
      ["Gentoo", "Healthy", "Observing"],
      ["Gentoo", "Healthy", "Stable"],
    ]);
    expect(rows.slice(4).map((r) => r[10])).toEqual([promoted![1], promoted![1]]);
    // |ERROR| is |estimated − accuracy| of the unrounded numbers: within rounding of the two printed ones.
    for (const r of rows) expect(Math.abs(Math.abs(Number(r[6]) - Number(r[5])) - Number(r[7]))).toBeLessThanOrEqual(0.0011);
    expect(eight).toMatch(/the label-free estimate against the labels' accuracy over these 6 windows: mean \|error\| \d\.\d+, max \d\.\d+/);
  });

  it("asks the Prometheus it started about the penguin model: the loop phase now and the accuracy series, with the URL to ask again", () => {
    const ten = step(run.stdout, 10);
    expect(ten).toContain(`ballast_modeldeployment_loop_phase{namespace="default", modeldeployment="penguins", phase="Stable"}  1`);
    const labels = /\n\s+labels\s+(\S+) ([\d. →]+)\n/.exec(ten);
    expect(labels, ten).not.toBeNull();
    const values = labels![2]!.split("→").map(Number);
    // The dip the Gentoo birds caused and the recovery, as Prometheus scraped them from the operator.
    expect(Math.min(...values)).toBeLessThan(0.75);
    expect(values.at(-1)).toBeGreaterThanOrEqual(0.75);
    expect(ten).toMatch(/\n\s+estimated\s+\S+ [\d. →]+\n/);
    expect(ten).toMatch(/http:\/\/127\.0\.0\.1:\d+\/graph\?g0\.expr=ballast_modeldeployment_loop_phase/);
    expect(ten).toMatch(/✓ Prometheus has the penguin model's loop phase and its accuracy series/);
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
      const run = await runDemo(dir, [], 180_000, `[2/${STEPS}]`);
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
