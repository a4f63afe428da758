// Given the local cluster, the workloads a user runs behave as on a real cluster: Deployments get Ready pods
// with their own IPs, GPU Jobs are scheduled by the real scheduler onto the GPU node, failures are visible.
import { AppsV1Api, BatchV1Api, CoreV1Api, EventsV1Api, type V1Container, type V1Job, type V1JobSpec, type V1Pod } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAlive } from "../../../src/devcluster/processes.js";
import { createTestNamespace, testKubeConfig, waitFor } from "../../support/cluster.js";

const IMAGE = "ghcr.io/ballast-dev/ballast:test";
const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const apps = kc.makeApiClient(AppsV1Api);
const batch = kc.makeApiClient(BatchV1Api);
const events = kc.makeApiClient(EventsV1Api);

let ns: Awaited<ReturnType<typeof createTestNamespace>>;
beforeAll(async () => {
  ns = await createTestNamespace("devcluster");
});
afterAll(async () => {
  await ns?.remove();
});

const podEnv = [
  { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
  { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
  { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
];

async function podsOf(selector: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace: ns.name, labelSelector: selector })).items;
}

const isReady = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

function gpuJob(name: string, opts: { tolerate: boolean; exitCode?: number; backoffLimit?: number }): V1Job {
  return {
    metadata: { name },
    spec: {
      backoffLimit: opts.backoffLimit ?? 0,
      template: {
        spec: {
          restartPolicy: "Never",
          nodeSelector: opts.tolerate ? { "ballast.dev/accelerator": "nvidia-gpu" } : {},
          tolerations: opts.tolerate ? [{ key: "nvidia.com/gpu", operator: "Exists", effect: "NoSchedule" }] : [],
          containers: [
            {
              name: "train",
              image: IMAGE,
              args: ["dev", "job", "--seconds", "1", "--exit-code", String(opts.exitCode ?? 0)],
              resources: { limits: { "nvidia.com/gpu": "1" } },
            },
          ],
        },
      },
    },
  };
}

describe("a Deployment of Ballast's image on the local nodes", () => {
  const labels = { app: "echo" };
  let pods: V1Pod[] = [];

  it("runs 2 replicas as Ready pods with distinct loopback pod IPs that answer HTTP", async () => {
    await apps.createNamespacedDeployment({
      namespace: ns.name,
      body: {
        metadata: { name: "echo" },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              containers: [
                {
                  name: "echo",
                  image: IMAGE,
                  args: ["dev", "echo", "--port", "8080"],
                  env: podEnv,
                  ports: [{ name: "http", containerPort: 8080 }],
                  readinessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 1 },
                  livenessProbe: { httpGet: { path: "/healthz", port: 8080 }, initialDelaySeconds: 10, periodSeconds: 2 },
                },
              ],
            },
          },
        },
      },
    });
    pods = await waitFor(
      "2 Ready echo pods",
      async () => {
        const ps = await podsOf("app=echo");
        return ps.length === 2 && ps.every(isReady) ? ps : undefined;
      },
      90_000,
    );
    const ips = pods.map((p) => p.status!.podIP!);
    expect(new Set(ips).size).toBe(2);
    for (const p of pods) {
      expect(p.status!.podIP).toMatch(/^127\./);
      expect(p.status!.phase).toBe("Running");
      expect(p.status!.containerStatuses![0]!.ready).toBe(true);
      const res = await fetch(`http://${p.status!.podIP}:8080/echo`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { pod: string; namespace: string; podIP: string };
      expect(body).toMatchObject({ pod: p.metadata!.name, namespace: ns.name, podIP: p.status!.podIP });
    }
    const dep = await apps.readNamespacedDeployment({ name: "echo", namespace: ns.name });
    expect(dep.status?.readyReplicas).toBe(2);
  });

  it("serves a Service on its ClusterIP, spreading connections over the ready pods", async () => {
    const svc = await core.createNamespacedService({
      namespace: ns.name,
      body: { metadata: { name: "echo" }, spec: { selector: labels, ports: [{ port: 80, targetPort: "http" }] } },
    });
    const ip = svc.spec!.clusterIP!;
    expect(ip).toMatch(/^127\./);
    const answeredBy = new Set<string>();
    await waitFor(
      "both pods to answer through the Service",
      async () => {
        const res = await fetch(`http://${ip}:80/echo`, { headers: { Connection: "close" } });
        answeredBy.add(((await res.json()) as { pod: string }).pod);
        return answeredBy.size === 2;
      },
      30_000,
      100,
    );
    expect([...answeredBy].sort()).toEqual(pods.map((p) => p.metadata!.name).sort());
  });

  it("garbage-collects the pods and kills their processes when the Deployment is deleted", async () => {
    const pids = pods.map((p) => Number(p.status!.containerStatuses![0]!.containerID!.replace("ballast-local://", "")));
    expect(pids.every((pid) => isAlive(pid))).toBe(true);
    await apps.deleteNamespacedDeployment({ name: "echo", namespace: ns.name, propagationPolicy: "Background" });
    await waitFor("echo pods to be gone", async () => (await podsOf("app=echo")).length === 0, 90_000);
    await waitFor("echo processes to exit", async () => pids.every((pid) => !isAlive(pid)), 30_000);
    for (const p of pods) await expect(fetch(`http://${p.status!.podIP}:8080/echo`)).rejects.toThrow();
  });
});

describe("a GPU Job", () => {
  it("lands on the GPU node through the real scheduler and completes", async () => {
    await batch.createNamespacedJob({ namespace: ns.name, body: gpuJob("gpu-ok", { tolerate: true }) });
    const job = await waitFor(
      "Job gpu-ok Complete",
      async () => {
        const j = await batch.readNamespacedJob({ name: "gpu-ok", namespace: ns.name });
        return j.status?.conditions?.some((c) => c.type === "Complete" && c.status === "True") ? j : undefined;
      },
      90_000,
    );
    expect(job.status?.succeeded).toBe(1);
    const [pod] = await podsOf("job-name=gpu-ok");
    expect(pod?.spec?.nodeName).toMatch(/^ballast-gpu-/);
    expect(pod?.status?.phase).toBe("Succeeded");
    expect(pod?.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
  });

  it("without the toleration stays Pending with a FailedScheduling event", async () => {
    await batch.createNamespacedJob({ namespace: ns.name, body: gpuJob("gpu-untolerated", { tolerate: false }) });
    const pod = await waitFor("a pending pod of gpu-untolerated", async () => (await podsOf("job-name=gpu-untolerated"))[0]);
    const event = await waitFor("FailedScheduling event", async () => {
      const list = await events.listNamespacedEvent({ namespace: ns.name });
      return list.items.find((e) => e.regarding?.name === pod.metadata!.name && e.reason === "FailedScheduling");
    });
    expect(event.note).toMatch(/untolerated taint|Insufficient nvidia.com\/gpu/);
    const again = await core.readNamespacedPod({ name: pod.metadata!.name!, namespace: ns.name });
    expect(again.status?.phase).toBe("Pending");
    expect(again.spec?.nodeName).toBeUndefined();
  });

  it("whose container exits 1 fails after its backoffLimit", async () => {
    await batch.createNamespacedJob({ namespace: ns.name, body: gpuJob("gpu-fails", { tolerate: true, exitCode: 1, backoffLimit: 1 }) });
    const job = await waitFor(
      "Job gpu-fails Failed",
      async () => {
        const j = await batch.readNamespacedJob({ name: "gpu-fails", namespace: ns.name });
        return j.status?.conditions?.some((c) => c.type === "Failed" && c.status === "True") ? j : undefined;
      },
      120_000,
    );
    expect(job.status?.conditions?.find((c) => c.type === "Failed")?.reason).toBe("BackoffLimitExceeded");
    const pods = await podsOf("job-name=gpu-fails");
    expect(pods.length).toBe(2);
    for (const p of pods) {
      expect(p.status?.phase).toBe("Failed");
      expect(p.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 1, reason: "Error" });
    }
  });
});

describe("a container's termination message", () => {
  const job = (name: string, container: Partial<V1Container>, spec: Partial<V1JobSpec> = {}): V1Job => ({
    metadata: { name },
    spec: { backoffLimit: 0, ...spec, template: { spec: { restartPolicy: "Never", containers: [{ name: "main", image: IMAGE, ...container }] } } },
  });
  const finishedJob = (name: string, condition: "Complete" | "Failed") =>
    waitFor(
      `Job ${name} ${condition}`,
      async () => {
        const j = await batch.readNamespacedJob({ name, namespace: ns.name });
        return j.status?.conditions?.some((c) => c.type === condition && c.status === "True") ? j : undefined;
      },
      90_000,
    );
  const terminated = (p: V1Pod) => p.status?.containerStatuses?.[0]?.state?.terminated;

  it("is what the container wrote to /dev/termination-log", async () => {
    const result = JSON.stringify({ accuracy: 0.93, model: "fraud", version: 7 });
    await batch.createNamespacedJob({
      namespace: ns.name,
      body: job("writes-message", { args: ["dev", "job", "--seconds", "0", "--termination-message", result] }),
    });
    await finishedJob("writes-message", "Complete");
    const [pod] = await podsOf("job-name=writes-message");
    expect(terminated(pod!)).toMatchObject({ exitCode: 0, reason: "Completed", message: result });
  });

  it("with FallbackToLogsOnError and nothing written, is the tail of the failed container's log", async () => {
    await batch.createNamespacedJob({
      namespace: ns.name,
      body: job("falls-back", {
        args: ["dev", "job", "--seconds", "0", "--log-lines", "100", "--exit-code", "1"],
        terminationMessagePolicy: "FallbackToLogsOnError",
      }),
    });
    await finishedJob("falls-back", "Failed");
    const [pod] = await podsOf("job-name=falls-back");
    // The kubelet's last 80 lines: 79 of the numbered ones, then the line the job prints as it exits.
    const tail = Array.from({ length: 79 }, (_, i) => `line ${22 + i}\n`).join("") + `${JSON.stringify({ msg: "job finished", exitCode: 1 })}\n`;
    expect(terminated(pod!)).toMatchObject({ exitCode: 1, reason: "Error", message: tail });
  });

  it("lets each pod of an Indexed Job report its own JOB_COMPLETION_INDEX", async () => {
    await batch.createNamespacedJob({
      namespace: ns.name,
      body: job(
        "indexed",
        { args: ["dev", "job", "--seconds", "0", "--termination-message", "$(JOB_COMPLETION_INDEX)"] },
        { completions: 2, parallelism: 2, completionMode: "Indexed" },
      ),
    });
    const done = await finishedJob("indexed", "Complete");
    expect(done.status?.succeeded).toBe(2);
    expect(done.status?.completedIndexes).toBe("0,1");
    const pods = await podsOf("job-name=indexed");
    const byIndex = pods.map((p) => [p.metadata!.annotations!["batch.kubernetes.io/job-completion-index"], terminated(p)?.message]).sort();
    expect(byIndex).toEqual([
      ["0", "0"],
      ["1", "1"],
    ]);
  });
});

describe("a pod's volumes", () => {
  it("are mounted where the pod asks, even an emptyDir over /tmp while the cluster's files live under /tmp", async () => {
    await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: "settings" }, data: { greeting: "hello" } } });
    await core.createNamespacedPersistentVolumeClaim({
      namespace: ns.name,
      body: { metadata: { name: "data" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } },
    });
    const claim = await waitFor("claim data Bound by the local provisioner", async () => {
      const c = await core.readNamespacedPersistentVolumeClaim({ name: "data", namespace: ns.name });
      return c.status?.phase === "Bound" ? c : undefined;
    });
    expect(claim.spec?.storageClassName).toBe("ballast-local");
    await core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: "volumes" },
        spec: {
          volumes: [
            { name: "scratch", emptyDir: {} },
            { name: "settings", configMap: { name: "settings" } },
            { name: "data", persistentVolumeClaim: { claimName: "data" } },
          ],
          containers: [
            {
              name: "echo",
              image: IMAGE,
              args: ["dev", "echo", "--port", "8080"],
              env: podEnv,
              readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
              volumeMounts: [
                { name: "scratch", mountPath: "/tmp" },
                { name: "settings", mountPath: "/etc/ballast-test", readOnly: true },
                { name: "data", mountPath: "/data" },
              ],
            },
          ],
        },
      },
    });
    const pod = await waitFor(
      "volumes pod Ready",
      async () => {
        const p = await core.readNamespacedPod({ name: "volumes", namespace: ns.name });
        return isReady(p) ? p : undefined;
      },
      60_000,
    );
    const fs = async (path: string) =>
      (await fetch(`http://${pod.status!.podIP}:8080/fs?path=${encodeURIComponent(path)}`)).json() as Promise<{ content?: string; entries?: string[] }>;
    expect((await fs("/etc/ballast-test/greeting")).content).toBe("hello");
    expect((await fs("/var/run/secrets/kubernetes.io/serviceaccount/namespace")).content).toBe(ns.name);
    expect((await fs("/var/run/secrets/kubernetes.io/serviceaccount/token")).content).toMatch(/^ey/);
    expect((await fs("/tmp")).entries).toEqual([]);
    expect((await fs("/data")).entries).toEqual([]);
  });
});

describe("a pod whose image is not Ballast's", () => {
  it("fails visibly with ErrImagePull, never a fake Running", async () => {
    await core.createNamespacedPod({ namespace: ns.name, body: { metadata: { name: "nginx" }, spec: { containers: [{ name: "web", image: "nginx:1.27" }] } } });
    const pod = await waitFor("nginx pod with an image pull error", async () => {
      const p = await core.readNamespacedPod({ name: "nginx", namespace: ns.name });
      const reason = p.status?.containerStatuses?.[0]?.state?.waiting?.reason;
      return reason === "ErrImagePull" || reason === "ImagePullBackOff" ? p : undefined;
    });
    expect(pod.status?.phase).toBe("Pending");
    expect(pod.status?.containerStatuses?.[0]?.state?.waiting?.message).toContain("ghcr.io/ballast-dev/ballast");
    expect(pod.status?.containerStatuses?.[0]?.ready).toBe(false);
  });
});
