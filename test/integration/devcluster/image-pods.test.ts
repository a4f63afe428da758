// The image users get, run by the local nodes: with `make image`'s layout in place (built here if this commit's
// is not there yet), pods naming the image by digest run from its root filesystem (read-only, uid 65532, the
// image's entrypoint) instead of the checkout's CLI. The chart's operator Deployment, a retraining-style Job
// that trains the weather model, and the serving pods the operator creates all run from the image, and the
// model answers OIP v2 infer through its Service.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { createTestNamespace, clusterEnv, waitFor } from "../../support/cluster.js";
import { installCrds, kubectl, kubectlOk } from "../api/kubectl.js";
import { exampleIn } from "../api/weather-example.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const version = (JSON.parse(readFileSync(`${repoRoot}package.json`, "utf8")) as { version: string }).version;
const repository = "ghcr.io/ballast-dev/ballast";
const FEATURES = "precipitation,temp_max,temp_min,wind";

let operatorNs: { name: string; remove: () => Promise<void> };
let modelsNs: { name: string; remove: () => Promise<void> };
let helm = "";
let digests: Record<string, string> = {};
let imageRef = "";
let buildSeconds = 0;

interface PodJson {
  metadata: { name: string };
  spec: { containers: { name: string; image: string }[] };
  status: { containerStatuses?: { name: string; imageID: string; ready: boolean }[] };
}

function pods(namespace: string, selector: string): PodJson[] {
  return (JSON.parse(kubectlOk(["get", "pods", "-n", namespace, "-l", selector, "-o", "json"])) as { items: PodJson[] }).items;
}

/** The Pulled events the local nodes recorded for a pod (one per container start). */
function pulledMessages(namespace: string, pod: string): string[] {
  const out = kubectlOk(["get", "events.events.k8s.io", "-n", namespace, "--field-selector", `regarding.name=${pod},reason=Pulled`, "-o", "json"]);
  return (JSON.parse(out) as { items: { note: string }[] }).items.map((e) => e.note);
}

describe("pods run from the image's root filesystem on the local nodes", () => {
  beforeAll(() => {
    const started = Date.now();
    // This commit's build when dist/image holds it (the unit image test may have built it), else built now;
    // under the script's lock, so the two never build at once.
    const printed = execFileSync(`${repoRoot}hack/image/ensure-image.sh`, {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, PATH: `${process.execPath.replace(/\/node$/, "")}:${process.env.PATH}` },
      timeout: 900_000,
    });
    buildSeconds = (Date.now() - started) / 1000;
    digests = Object.fromEntries(
      printed
        .trim()
        .split("\n")
        .map((l) => l.split(" ") as [string, string]),
    );
    imageRef = `${repository}@${digests.index}`;
    helm = execFileSync(`${repoRoot}hack/helm/ensure-helm.sh`, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    installCrds(repoRoot);
  }, 900_000);

  beforeAll(async () => {
    operatorNs = await createTestNamespace("image-operator");
    modelsNs = await createTestNamespace("image-models");
  });

  afterAll(async () => {
    kubectl(["delete", "modeldeployment", "weather", "-n", modelsNs.name, "--ignore-not-found", "--timeout=120s"]);
    execFileSync(helm, ["uninstall", "ballast-image", "--namespace", operatorNs.name, "--wait", "--timeout", "120s", "--ignore-not-found"], {
      env: clusterEnv(),
      stdio: "ignore",
    });
    await modelsNs.remove();
    await operatorNs.remove();
  }, 300_000);

  it("the chart's operator, named by the image's digest, runs from the image as uid 65532 with a read-only root", () => {
    console.error(`[image-pods] image ${imageRef} ready in ${buildSeconds.toFixed(1)} s (reused or built)`);
    const started = Date.now();
    execFileSync(
      helm,
      [
        "install",
        "ballast-image",
        `${repoRoot}charts/ballast`,
        "--namespace",
        operatorNs.name,
        // tag@digest: the digest is what the nodes resolve; the operator passes the same reference to serving pods.
        "--set",
        `image.tag=${version}@${digests.index},bindToPodIP=true,watchNamespaces={${modelsNs.name}}`,
        "--wait",
        "--timeout",
        "240s",
      ],
      { env: clusterEnv(), stdio: ["ignore", "ignore", "pipe"] },
    );
    console.error(`[image-pods] operator from the image available in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const [operator] = pods(operatorNs.name, "app.kubernetes.io/name=ballast");
    expect(operator!.spec.containers[0]!.image).toBe(`${repository}:${version}@${digests.index}`);
    // The runtime's imageID: the platform manifest the node unpacked, not the checkout (ballast-local://…).
    expect(operator!.status.containerStatuses![0]!.imageID).toBe(`${repository}@${digests["linux/amd64"]}`);
    expect(pulledMessages(operatorNs.name, operator!.metadata.name)).toContainEqual(
      expect.stringMatching(new RegExp(`running its root filesystem \\(linux/amd64 ${digests["linux/amd64"]}, uid 65532, read-only\\)`)),
    );
  });

  it("a Job from the image trains the weather model into the claim, as the image's user", () => {
    const ns = modelsNs.name;
    kubectlOk(["apply", "-f", "-"], exampleIn("model-store-pvc.yaml", ns));
    kubectlOk(["create", "configmap", "weather-data", "-n", ns, `--from-file=weather.csv=${repoRoot}node_modules/vega-datasets/data/weather.csv`]);
    const job = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: "train-weather", namespace: ns },
      spec: {
        backoffLimit: 0,
        template: {
          spec: {
            restartPolicy: "Never",
            securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
            containers: [
              {
                name: "train",
                image: imageRef,
                // $(STORE) expands as Kubernetes expands args.
                args: [
                  "train",
                  "--data",
                  "/data/weather.csv",
                  "--label",
                  "weather",
                  "--features",
                  FEATURES,
                  "--store",
                  "$(STORE)",
                  "--model",
                  "weather",
                  "--epochs",
                  "5",
                ],
                env: [{ name: "STORE", value: "file:///models/store" }],
                securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
                volumeMounts: [
                  { name: "data", mountPath: "/data", readOnly: true },
                  { name: "models", mountPath: "/models" },
                ],
              },
            ],
            volumes: [
              { name: "data", configMap: { name: "weather-data" } },
              { name: "models", persistentVolumeClaim: { claimName: "ballast-models" } },
            ],
          },
        },
      },
    };
    kubectlOk(["apply", "-f", "-"], stringify(job));
    const done = kubectl(["wait", "--for=condition=Complete", "job/train-weather", "-n", ns, "--timeout=240s"]);
    if (done.status !== 0) throw new Error(`training Job did not complete: ${done.stderr}\n${kubectl(["logs", "job/train-weather", "-n", ns]).stdout}`);
    const [pod] = pods(ns, "job-name=train-weather");
    expect(pod!.status.containerStatuses![0]!.imageID).toBe(`${repository}@${digests["linux/amd64"]}`);
    expect(kubectlOk(["logs", "job/train-weather", "-n", ns])).toContain('"version":"v1"');
  });

  it("the operator from the image serves the model from pods run from the image, answering OIP v2 infer through the Service", async () => {
    const ns = modelsNs.name;
    kubectlOk(["apply", "-f", "-"], exampleIn("weather-classifier.yaml", ns));
    const ready = kubectl(["wait", "--for=condition=Ready", "modeldeployment/weather", "-n", ns, "--timeout=240s"]);
    if (ready.status !== 0) {
      throw new Error(`not Ready: ${ready.stderr}\n${kubectl(["get", "modeldeployment", "weather", "-n", ns, "-o", "yaml"]).stdout}`);
    }
    const serving = pods(ns, "app.kubernetes.io/component=serving");
    expect(serving.length).toBeGreaterThan(0);
    for (const pod of serving) {
      for (const c of pod.spec.containers) expect(c.image, c.name).toBe(`${repository}:${version}@${digests.index}`);
      for (const s of pod.status.containerStatuses!) expect(s.imageID, s.name).toBe(`${repository}@${digests["linux/amd64"]}`);
    }
    const svc = (JSON.parse(kubectlOk(["get", "service", "weather", "-n", ns, "-o", "json"])) as { spec: { clusterIP: string; ports: { port: number }[] } })
      .spec;
    const port = svc.ports[0]!.port;
    // Two days of Seattle weather: precipitation, temp_max, temp_min, wind.
    const days = [
      [0, 12.8, 5, 4.7],
      [10.9, 10.6, 2.8, 4.5],
    ];
    const body = {
      id: "from-the-image",
      inputs: FEATURES.split(",").map((name, i) => ({ name, shape: [days.length], datatype: "FP32", data: days.map((d) => d[i]!) })),
    };
    const res = await waitFor(
      "infer through the Service",
      async () => {
        const r = await fetch(`http://${svc.clusterIP}:${port}/v2/models/weather/infer`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        return r.status === 200 ? ((await r.json()) as { id: string; model_name: string; outputs: { name: string; shape: number[] }[] }) : undefined;
      },
      60_000,
    );
    expect(res).toMatchObject({ id: "from-the-image", model_name: "weather" });
    expect(res.outputs.find((o) => o.name === "label")?.shape).toEqual([2]);
  });
});
