// Given the local cluster, `kubectl logs` works as on a real one: the API server asks the pod's local node over
// its kubelet API (TLS, the API server's client certificate), and the node answers from the container's log file.
import { CoreV1Api, type V1Container, type V1Pod } from "@kubernetes/client-node";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensurePki } from "../../../src/devcluster/pki.js";
import { clusterDir, clusterEnv, clusterKubectl, createTestNamespace, kubectl, testKubeConfig, waitFor } from "../../support/cluster.js";

const IMAGE = "ghcr.io/ballast-dev/ballast:test";
const core = testKubeConfig().makeApiClient(CoreV1Api);
let ns: Awaited<ReturnType<typeof createTestNamespace>>;

beforeAll(async () => {
  ns = await createTestNamespace("logs");
});
afterAll(async () => {
  await ns?.remove();
});

const job = (name: string, args: string[]): V1Container => ({ name, image: IMAGE, args: ["dev", "job", ...args] });

async function runPod(name: string, containers: V1Container[], restartPolicy = "Never"): Promise<void> {
  await core.createNamespacedPod({ namespace: ns.name, body: { metadata: { name }, spec: { restartPolicy, terminationGracePeriodSeconds: 1, containers } } });
}

const readPod = (name: string) => core.readNamespacedPod({ name, namespace: ns.name });
const running = (pod: V1Pod) => pod.status?.containerStatuses?.every((c) => c.state?.running) ?? false;

/** `kubectl logs` until its output satisfies `done` (the container may not have printed yet). */
async function logsUntil(args: string[], done: (out: string) => boolean): Promise<string> {
  return waitFor(`kubectl logs ${args.join(" ")}`, async () => {
    const r = await kubectl(["logs", "-n", ns.name, ...args]);
    return r.code === 0 && done(r.stdout) ? r.stdout : undefined;
  });
}

describe("kubectl logs on the local cluster", () => {
  it("shows what a running container printed, its last lines with --tail, and clear errors for --timestamps and a --previous it never had", async () => {
    await runPod("printer", [job("main", ["--log-lines", "5", "--seconds", "600"])]);
    expect(await logsUntil(["printer"], (out) => out.includes("line 5"))).toBe("line 1\nline 2\nline 3\nline 4\nline 5\n");
    expect((await kubectl(["logs", "-n", ns.name, "printer", "--tail", "2"])).stdout).toBe("line 4\nline 5\n");
    expect((await kubectl(["logs", "-n", ns.name, "printer", "--limit-bytes", "8"])).stdout).toBe("line 1\nl");
    // No per-line times are recorded: asking for them is refused, not answered with made-up ones.
    const timestamps = await kubectl(["logs", "-n", ns.name, "printer", "--timestamps"]);
    expect(timestamps.stderr).toBe("Error from server (BadRequest): timestamps are not supported on ballast local nodes: log lines carry no times here\n");
    const previous = await kubectl(["logs", "-n", ns.name, "printer", "--previous"]);
    expect(previous.code).not.toBe(0);
    expect(previous.stderr).toBe(`Error from server (BadRequest): previous terminated container "main" in pod "printer" not found\n`);
  });

  it("with -c, shows the named container of a two-container pod", async () => {
    await runPod("pair", [job("counter", ["--log-lines", "2", "--seconds", "600"]), job("announcer", ["--log-pid", "--seconds", "600"])]);
    expect(await logsUntil(["pair", "-c", "counter"], (out) => out.includes("line 2"))).toBe("line 1\nline 2\n");
    expect(await logsUntil(["pair", "-c", "announcer"], (out) => out.length > 0)).toMatch(/^started pid \d+\n$/);
  });

  it("with -f, streams a line printed after the call started and ends when the container exits", async () => {
    await runPod("follower", [job("main", ["--log-lines", "1", "--seconds", "8"])]);
    await waitFor("follower running", async () => running(await readPod("follower")));
    const chunks: { at: number; text: string }[] = [];
    const follow = spawn(clusterKubectl(), ["logs", "-n", ns.name, "follower", "-f"], { env: clusterEnv() });
    follow.stdout.on("data", (d: Buffer) => chunks.push({ at: Date.now(), text: d.toString() }));
    const code = await new Promise<number | null>((resolve) => follow.once("exit", resolve));
    const text = chunks.map((c) => c.text).join("");
    expect(code).toBe(0);
    expect(text).toBe(`line 1\n${JSON.stringify({ msg: "job finished", exitCode: 0 })}\n`);
    // The first line came at once, the last one seconds later, as the container printed it.
    const lineOne = chunks.find((c) => c.text.includes("line 1"))!;
    const finished = chunks.find((c) => c.text.includes("job finished"))!;
    expect(finished.at - lineOne.at).toBeGreaterThan(1000);
    const pod = await readPod("follower");
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
  });

  it("with --previous after a restart, shows the previous instance's output, not the current one's", async () => {
    await runPod("restarter", [job("main", ["--log-pid", "--log-lines", "1", "--seconds", "10", "--exit-code", "1"])], "Always");
    await waitFor(
      "the second instance running",
      async () => {
        const status = (await readPod("restarter")).status?.containerStatuses?.[0];
        return (status?.restartCount ?? 0) >= 1 && status?.state?.running !== undefined;
      },
      90_000,
    );
    const pidLine = /^started pid (\d+)$/m;
    const current = await logsUntil(["restarter"], (out) => pidLine.test(out));
    const previous = await logsUntil(["restarter", "--previous"], (out) => out.includes("job finished"));
    expect(previous).toMatch(pidLine);
    expect(previous).toContain(`line 1\n${JSON.stringify({ msg: "job finished", exitCode: 1 })}\n`);
    expect(previous.match(pidLine)![1]).not.toBe(current.match(pidLine)![1]);
  });

  it("keeps on disk the logs of the current and the previous run only, as the kubelet does", async () => {
    await runPod("crasher", [job("main", ["--seconds", "1", "--exit-code", "1"])], "Always");
    const restarts = async () => (await readPod("crasher")).status?.containerStatuses?.[0]?.restartCount ?? 0;
    await waitFor("the third run", async () => (await restarts()) >= 2, 120_000);
    const { uid } = (await readPod("crasher")).metadata!;
    const dir = join(clusterDir(), "pods", `${ns.name}_crasher_${uid}`, "containers", "main");
    // Read between two equal restart counts, so a restart in between cannot make the listing stale.
    const seen = await waitFor("a listing within one run", async () => {
      const before = await restarts();
      const logs = readdirSync(dir).filter((f) => f.endsWith(".log"));
      return before === (await restarts()) ? { run: before, logs } : undefined;
    });
    expect(seen.logs.sort()).toEqual([`${seen.run - 1}.log`, `${seen.run}.log`]);
  });

  it("says a container that never started is waiting to start, and why", async () => {
    await runPod("foreign", [{ name: "web", image: "nginx:1.27" }]);
    await waitFor(
      "the image pull back-off",
      async () => (await readPod("foreign")).status?.containerStatuses?.[0]?.state?.waiting?.reason === "ImagePullBackOff",
    );
    const r = await kubectl(["logs", "-n", ns.name, "foreign"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toBe(`Error from server (BadRequest): container "web" in pod "foreign" is waiting to start: trying and failing to pull image\n`);
  });

  it("answers kubectl exec with an error that says local nodes do not support it", async () => {
    await runPod("no-exec", [job("main", ["--seconds", "600"])]);
    await waitFor("no-exec running", async () => running(await readPod("no-exec")));
    const r = await kubectl(["exec", "-n", ns.name, "no-exec", "--", "ls"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toBe(
      "error: Internal error occurred: unable to upgrade connection: exec is not supported on ballast local nodes: they run containers as local processes; read their output with kubectl logs\n",
    );
  });
});

describe("the local nodes' kubelet API", () => {
  /** GET /containerLogs on the node, with the given client certificate (or none): status code, or the TLS error. */
  async function callNode(clientCert?: { cert: string; key: string }): Promise<number | string> {
    // The node that runs the first suite's pod, so that a request that is let in finds its log.
    const nodeName = (await readPod("printer")).spec!.nodeName!;
    const node = await core.readNode({ name: nodeName });
    const host = node.status!.addresses!.find((a) => a.type === "InternalIP")!.address;
    const port = node.status!.daemonEndpoints!.kubeletEndpoint!.Port;
    const ca = readFileSync(join(clusterDir(), "pki", "ca.crt"));
    return new Promise((resolve) => {
      const req = request(
        {
          host,
          port,
          path: `/containerLogs/${ns.name}/printer/main`,
          ca,
          ...(clientCert ? { cert: readFileSync(clientCert.cert), key: readFileSync(clientCert.key) } : {}),
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", (err) => resolve(err.message));
      req.end();
    });
  }

  it("refuses a caller without a client certificate of the cluster CA, and one that is not the API server", async () => {
    const pki = join(clusterDir(), "pki");
    // No certificate: the handshake fails.
    expect(await callNode()).toEqual(expect.any(String));
    // The API server's own name, but signed by another CA: the handshake fails too.
    const foreign = await ensurePki(
      mkdtempSync(join(tmpdir(), "h11-foreign-pki-")),
      [{ file: "impostor", commonName: "kube-apiserver-kubelet-client" }],
      ["127.0.0.1"],
    );
    expect(await callNode(foreign.clients.impostor)).toEqual(expect.any(String));
    // The cluster's admin: authenticated, but only the API server may read logs here.
    expect(await callNode({ cert: join(pki, "admin.crt"), key: join(pki, "admin.key") })).toBe(403);
    // The API server's kubelet client certificate is let in.
    expect(await callNode({ cert: join(pki, "apiserver-kubelet-client.crt"), key: join(pki, "apiserver-kubelet-client.key") })).toBe(200);
  });
});
