// Given the local cluster (no ReadWriteMany volume involved), a real S3 server (SeaweedFS) holding a model trained into
// s3:// and the examples/weather-s3 ModelDeployment, traffic and feedback sent through the Service end up in the bucket
// under <prefix>/<model>/_log/<pod>/, shipped by the serving pod's sidecar, and the retraining Job the operator would
// create for this ModelDeployment trains a candidate from exactly those labels, reading them from the bucket.
import type { V1Job, V1Service } from "@kubernetes/client-node";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AwsClient } from "aws4fetch";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { applyModelDeploymentDefaults, type ModelDeploymentSpec, type ResolvedModelDeployment } from "../../../src/api/index.js";
import { waitForService } from "../../../src/demo/traffic.js";
import { candidateVersionName, desiredRetrainingJob } from "../../../src/operator/loop/retraining-job.js";
import { S3ModelStore, s3SettingsFromEnv } from "../../../src/runtime/s3-store.js";
import { openStore } from "../../../src/runtime/store.js";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import { ensureWeedBinary, startSeaweedS3, type SeaweedS3 } from "../../support/seaweedfs.js";
import { trainWeather } from "../../support/train-weather.js";
import { inferBody, loadWeather } from "../../unit/runtime/weather-fixture.js";
import { applyYaml, installCrdAndRbac, kubectlJson, operatorKubeconfig, startOperator, type OperatorProcess } from "./operator-process.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const example = <T>(file: string) => parse(readFileSync(join(repoRoot, "examples/weather-s3", file), "utf8")) as T;
const MD_NAME = "weather-ship";
const LABELS = 80;

interface SecretDoc {
  metadata: Record<string, string>;
  stringData: Record<string, string>;
}
interface ModelDeploymentDoc {
  metadata: Record<string, string>;
  spec: ModelDeploymentSpec & { model: { s3: { endpoint: string; credentialsSecretRef: { name: string } } } };
}

describe("ballast operator: an s3:// ModelDeployment's request log shipped to the bucket and retrained from", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let operator: OperatorProcess;
  let s3: SeaweedS3;
  let raw: AwsClient;

  /** Feedback ids in the shipped segments of the bucket. */
  async function shippedFeedbackIds(): Promise<string[]> {
    const list = await (await raw.fetch(`${s3.endpoint}/ballast-models?list-type=2&prefix=${encodeURIComponent("store/weather/_log/")}`)).text();
    const ids: string[] = [];
    for (const [, key] of list.matchAll(/<Key>([^<]+)<\/Key>/g)) {
      const text = await (await raw.fetch(`${s3.endpoint}/ballast-models/${key}`)).text();
      for (const line of text.split("\n")) if (line.startsWith('{"kind":"feedback"')) ids.push((JSON.parse(line) as { id: string }).id);
    }
    return ids;
  }

  beforeAll(async () => {
    s3 = await startSeaweedS3(ensureWeedBinary());
    raw = new AwsClient({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, service: "s3", region: "us-east-1", retries: 0 });
    await s3.createBucket("ballast-models");
    const res = trainWeather("s3://ballast-models/store", s3.env);
    expect(res.status, res.stderr).toBe(0);
    await installCrdAndRbac();
    ns = await createTestNamespace("op-s3-ship");
    operator = await startOperator({ kubeconfig: operatorKubeconfig(mkdtempSync(join(tmpdir(), "l1-s3-ship-kc-"))), args: ["--namespaces", ns.name] });
  }, 900_000);

  afterAll(async () => {
    if (ns) await kubectl(["delete", "md", "--all", "-n", ns.name, "--wait=true", "--timeout=90s"]);
    const code = await operator?.stop();
    await ns?.remove();
    await s3?.stop();
    expect(code).toBe(0);
  });

  it("ships the serving pod's acknowledged feedback to _log/<pod>/, and the retraining Job trains a candidate on exactly those labels", async () => {
    const secret = example<SecretDoc>("secret.yaml");
    secret.metadata = { name: "weather-model-store", namespace: ns.name };
    secret.stringData = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
    const md = example<ModelDeploymentDoc>("modeldeployment.yaml");
    md.metadata = { name: MD_NAME, namespace: ns.name };
    md.spec.model.s3.endpoint = s3.endpoint;
    // The test starts the Job itself, once the labels are in the bucket: no drift-driven retraining meanwhile.
    md.spec.policy = { paused: true } as ModelDeploymentSpec["policy"];
    md.spec.retraining = {
      ...md.spec.retraining,
      hyperparameters: { epochs: 2, batchSize: 64 },
      search: { maxTrials: 1 },
    } as ModelDeploymentSpec["retraining"];
    await applyYaml(`${stringify(secret)}---\n${stringify(md)}`);
    const wait = await kubectl(["wait", "--for=condition=Ready", `md/${MD_NAME}`, "-n", ns.name, "--timeout=240s"]);
    expect(wait.stdout, wait.stderr).toContain("condition met");
    const svc = await kubectlJson<V1Service>(["get", "service", MD_NAME, "-n", ns.name]);
    const url = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}`;
    await waitForService(`${url}/v2/health/ready`, 60_000);

    const since = new Date().toISOString();
    const rows = loadWeather().slice(0, LABELS);
    for (const [i, row] of rows.entries()) {
      const id = `cluster-${i}`;
      const infer = await fetch(`${url}/v2/models/weather/infer`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(inferBody([row], id)),
      });
      expect(infer.status).toBe(200);
      const fb = await fetch(`${url}/v1/feedback`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id, label: row.weather }),
      });
      expect(fb.status).toBe(200);
    }
    // A quiet log's segment is sealed after 15 s and shipped at the next look (2 s): no pod has to stop for it.
    const shipped = await waitFor(
      "every label in the bucket",
      async () => {
        const ids = await shippedFeedbackIds();
        return ids.length >= LABELS ? ids : undefined;
      },
      120_000,
      1000,
    );
    expect(shipped.sort()).toEqual(rows.map((_, i) => `cluster-${i}`).sort());

    // The Job the operator creates for attempt 1 of this ModelDeployment, applied as it is.
    const live = await kubectlJson<{ metadata: ResolvedModelDeployment["metadata"]; spec: ModelDeploymentSpec }>(["get", "md", MD_NAME, "-n", ns.name]);
    const resolved: ResolvedModelDeployment = {
      apiVersion: "ballast.dev/v1alpha1",
      kind: "ModelDeployment",
      metadata: live.metadata,
      spec: applyModelDeploymentDefaults(live.spec),
    };
    const job: V1Job = desiredRetrainingJob(resolved, { attempt: 1, fromVersion: "v1", feedbackSince: since, defaultImage: "ghcr.io/ballast-dev/ballast:dev" });
    expect(job.spec!.template.spec!.volumes!.map((v) => v.name)).toEqual(["tmp"]);
    await applyYaml(stringify(job));
    const done = await kubectl(["wait", "--for=condition=complete", `job/${job.metadata!.name}`, "-n", ns.name, "--timeout=300s"]);
    expect(done.stdout, `${done.stderr}\n${(await kubectl(["logs", "-n", ns.name, `job/${job.metadata!.name}`])).stdout}`).toContain("condition met");
    const trainLog = (await kubectl(["logs", "-n", ns.name, `job/${job.metadata!.name}`])).stdout;
    const feedback = trainLog
      .split("\n")
      .filter((l) => l.includes('"event":"feedback"'))
      .map((l) => JSON.parse(l) as { rows: number; directories: string[] })[0];
    expect(feedback?.rows).toBe(LABELS);
    expect(feedback?.directories).toHaveLength(1);
    const store = openStore("s3://ballast-models/store", { s3: s3SettingsFromEnv(s3.env) }) as S3ModelStore;
    const versions = await store.listVersions("weather");
    expect(versions).toContainEqual(expect.objectContaining({ version: candidateVersionName(resolved, 1), candidate: true }));

    const sidecarLog = (await kubectl(["logs", "-n", ns.name, `deployment/${MD_NAME}-serving`, "-c", "sidecar"])).stdout;
    for (const text of [trainLog, sidecarLog, operator.logs()]) expect(text).not.toContain(s3.secretAccessKey);
  }, 600_000);
});
