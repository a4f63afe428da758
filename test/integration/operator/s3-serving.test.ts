// Given the local cluster, a real S3 server (SeaweedFS) holding a trained model and the shipped
// examples/weather-s3 manifests, the user's ModelDeployment serves from s3:// with the credentials Secret, and the
// keys appear nowhere but in that Secret: not in the Deployment, the status, the Events or the operator's log.
// Feedback sent through its Service is shipped by the serving pod's sidecar to <prefix>/<model>/_log/<pod>/, and the
// retraining Job built for the ModelDeployment (no volume: no ReadWriteMany needed) trains on exactly those labels.
import type { V1Deployment, V1Job, V1Service } from "@kubernetes/client-node";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
import { applyYaml, installCrdAndRbac, waitForReadyReason, kubectlJson, operatorKubeconfig, startOperator, type OperatorProcess } from "./operator-process.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const example = <T>(file: string) => parse(readFileSync(join(repoRoot, "examples/weather-s3", file), "utf8")) as T;

interface SecretDoc {
  metadata: Record<string, string>;
  stringData: Record<string, string>;
}
interface ModelDeploymentDoc {
  metadata: Record<string, string>;
  spec: { model: { s3: { endpoint: string; credentialsSecretRef: { name: string }; logSpoolBytes?: number } }; policy: unknown };
}

/** Labels sent through the Service and expected in the bucket, then in the retraining Job's training data. */
const FEEDBACK_LABELS = 80;
const SPOOL_BYTES = 65536;

interface MD {
  status?: { conditions?: { type: string; status: string; reason: string; message: string }[] };
}

describe("ballast operator: a ModelDeployment serving from s3:// with a credentials Secret", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let operator: OperatorProcess;
  let s3: SeaweedS3;

  /** The example's Secret and ModelDeployment in the test namespace, pointed at this run's S3 server. */
  async function applyExample(name: string, secretName: string, secretKey: string): Promise<void> {
    const secret = example<SecretDoc>("secret.yaml");
    secret.metadata = { name: secretName, namespace: ns.name };
    secret.stringData = { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: secretKey };
    const md = example<ModelDeploymentDoc>("modeldeployment.yaml");
    md.metadata = { name, namespace: ns.name };
    md.spec.model.s3.endpoint = s3.endpoint;
    md.spec.model.s3.credentialsSecretRef.name = secretName;
    // A spool small enough for the test to fill while the server is down.
    md.spec.model.s3.logSpoolBytes = SPOOL_BYTES;
    // No drift-driven retraining on the test's idle pods.
    md.spec.policy = { paused: true };
    await applyYaml(`${stringify(secret)}---\n${stringify(md)}`);
  }

  beforeAll(async () => {
    s3 = await startSeaweedS3(ensureWeedBinary());
    await s3.createBucket("ballast-models");
    const res = trainWeather("s3://ballast-models/store", s3.env);
    expect(res.status, res.stderr).toBe(0);
    await installCrdAndRbac();
    ns = await createTestNamespace("op-s3");
    operator = await startOperator({ kubeconfig: operatorKubeconfig(mkdtempSync(join(tmpdir(), "s6-s3-kc-"))), args: ["--namespaces", ns.name] });
  }, 900_000);

  afterAll(async () => {
    if (ns) await kubectl(["delete", "md", "--all", "-n", ns.name, "--wait=true", "--timeout=90s"]);
    const code = await operator?.stop();
    await ns?.remove();
    await s3?.stop();
    expect(code).toBe(0);
  });

  let url: string;

  it("becomes Ready and answers OIP infer through its Service, the model read from the bucket", async () => {
    await applyExample("weather-s3", "weather-model-store", s3.secretAccessKey);
    const wait = await kubectl(["wait", "--for=condition=Ready", "md/weather-s3", "-n", ns.name, "--timeout=240s"]);
    expect(wait.stdout, wait.stderr).toContain("condition met");
    const svc = await kubectlJson<V1Service>(["get", "service", "weather-s3", "-n", ns.name]);
    url = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}`;
    await waitForService(`${url}/v2/health/ready`, 60_000);
    const res = await fetch(`${url}/v2/models/weather/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        inputs: ["precipitation", "temp_max", "temp_min", "wind"].map((name, i) => ({ name, shape: [1], datatype: "FP32", data: [[0, 12.8, 5, 4.7][i]] })),
      }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { model_version: string }).model_version).toBe("v1");
  });

  it("hands the keys to the pods only as references to the Secret: they are in no object, Event or log the operator writes", async () => {
    const dep = await kubectlJson<V1Deployment>(["get", "deployment", "weather-s3-serving", "-n", ns.name]);
    for (const c of dep.spec!.template.spec!.containers) {
      const secretEnv = c.env!.find((e) => e.name === "AWS_SECRET_ACCESS_KEY");
      expect(secretEnv, c.name).toEqual({
        name: "AWS_SECRET_ACCESS_KEY",
        valueFrom: { secretKeyRef: { name: "weather-model-store", key: "AWS_SECRET_ACCESS_KEY" } },
      });
    }
    const seen = [
      JSON.stringify(dep),
      (await kubectl(["get", "md", "weather-s3", "-n", ns.name, "-o", "json"])).stdout,
      (await kubectl(["get", "events", "-n", ns.name, "-o", "json"])).stdout,
      operator.logs(),
      (await kubectl(["logs", "-n", ns.name, "deployment/weather-s3-serving", "-c", "server"])).stdout,
      (await kubectl(["logs", "-n", ns.name, "deployment/weather-s3-serving", "-c", "sidecar"])).stdout,
    ];
    for (const text of seen) expect(text).not.toContain(s3.secretAccessKey);
  });

  it("ships the acknowledged feedback to _log/<pod>/ in the bucket, and the retraining Job trains a candidate on exactly those labels", async () => {
    const since = new Date().toISOString();
    const rows = loadWeather().slice(0, FEEDBACK_LABELS);
    const post = (path: string, body: object) =>
      fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    for (const [i, row] of rows.entries()) {
      expect((await post("/v2/models/weather/infer", inferBody([row], `cluster-${i}`))).status).toBe(200);
      expect((await post("/v1/feedback", { id: `cluster-${i}`, label: row.weather })).status).toBe(200);
    }
    // A quiet log's segment is sealed after 15 s and shipped at the next look (2 s): no pod has to stop for it.
    const shipped = await waitFor(
      "every label in the bucket",
      async () => {
        const { feedback } = await s3.shippedFeedback("ballast-models", "store/weather/_log/");
        return feedback.length >= FEEDBACK_LABELS ? feedback.map((f) => f.id) : undefined;
      },
      120_000,
      1000,
    );
    expect(shipped.sort()).toEqual(rows.map((_, i) => `cluster-${i}`).sort());

    // The Job the operator creates for attempt 1 of this ModelDeployment, applied as it is but for a shorter search.
    const live = await kubectlJson<{ metadata: ResolvedModelDeployment["metadata"]; spec: ModelDeploymentSpec }>(["get", "md", "weather-s3", "-n", ns.name]);
    const spec = applyModelDeploymentDefaults(live.spec);
    spec.retraining.hyperparameters.epochs = 2;
    spec.retraining.search = { ...spec.retraining.search, maxTrials: 1, parallelism: 1 };
    const md: ResolvedModelDeployment = { apiVersion: "ballast.dev/v1alpha1", kind: "ModelDeployment", metadata: live.metadata, spec };
    const job: V1Job = desiredRetrainingJob(md, { attempt: 1, fromVersion: "v1", feedbackSince: since, defaultImage: "ghcr.io/ballast-dev/ballast:dev" });
    expect(job.spec!.template.spec!.volumes!.map((v) => v.name)).toEqual(["tmp"]);
    await applyYaml(stringify(job));
    const name = `job/${job.metadata!.name}`;
    const done = await kubectl(["wait", "--for=condition=complete", name, "-n", ns.name, "--timeout=300s"]);
    const trainLog = (await kubectl(["logs", "-n", ns.name, name])).stdout;
    expect(done.stdout, `${done.stderr}\n${trainLog}`).toContain("condition met");
    const feedback = trainLog
      .split("\n")
      .filter((l) => l.includes('"event":"feedback"'))
      .map((l) => JSON.parse(l) as { rows: number; directories: string[] })[0];
    expect(feedback?.rows).toBe(FEEDBACK_LABELS);
    expect(feedback?.directories).toHaveLength(1);
    const store = openStore("s3://ballast-models/store", { s3: s3SettingsFromEnv(s3.env) }) as S3ModelStore;
    expect(await store.listVersions("weather")).toContainEqual(expect.objectContaining({ version: candidateVersionName(md, 1), candidate: true }));
    for (const text of [trainLog, (await kubectl(["logs", "-n", ns.name, "deployment/weather-s3-serving", "-c", "sidecar"])).stdout])
      expect(text).not.toContain(s3.secretAccessKey);
  }, 600_000);

  it("records a LogSpoolFull Warning while the bucket is unreachable and the spool fills, refuses feedback instead of losing it, and says when it drained", async () => {
    const post = (path: string, body: object) =>
      fetch(`${url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const rows = loadWeather();
    const events = async (reason: string) =>
      (
        await kubectlJson<{ items: { reason: string; type: string; note: string; regarding: { name: string }; series?: { count: number } }[] }>([
          "get",
          "events.events.k8s.io",
          "-n",
          ns.name,
          "--field-selector",
          `reason=${reason}`,
        ])
      ).items.filter((e) => e.regarding.name === "weather-s3");
    const firstEvent = (reason: string) => waitFor(`a ${reason} Event`, async () => (await events(reason))[0], 120_000, 1000);
    s3.kill();
    let refused: Response | undefined;
    for (let i = 0; i < 3000 && !refused; i++) {
      const row = rows[i % rows.length]!;
      expect((await post("/v2/models/weather/infer", inferBody([row], `outage-${i}`))).status).toBe(200);
      const res = await post("/v1/feedback", { id: `outage-${i}`, label: row.weather });
      if (res.status === 503) refused = res;
      else expect(res.status).toBe(200);
    }
    expect(refused, "feedback refused once the spool is full").toBeDefined();
    expect(await refused!.text()).toContain("feedback not recorded");
    const warning = await firstEvent("LogSpoolFull");
    expect(warning.type).toBe("Warning");
    expect(warning.note).toMatch(/^serving pod weather-s3-serving-\S+: its request log spool is full \(spec\.model\.s3\.logSpoolBytes\)/);
    // Serving goes on: an S3 outage does not take the model down.
    expect((await kubectlJson<MD>(["get", "md", "weather-s3", "-n", ns.name])).status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");

    await s3.restart();
    const drained = await firstEvent("LogSpoolDrained");
    expect(drained.type).toBe("Normal");
    expect((await post("/v2/models/weather/infer", inferBody([rows[0]!], "after-outage"))).status).toBe(200);
    expect((await post("/v1/feedback", { id: "after-outage", label: rows[0]!.weather })).status).toBe(200);
  }, 600_000);

  it("with a wrong key in the Secret, never becomes Ready, and Ready's reason says access was denied and which field to fix", async () => {
    await applyExample("weather-s3-badkey", "weather-model-store-badkey", "not-the-secret-key-77");
    const ready = await waitForReadyReason(ns.name, "weather-s3-badkey", "ServerFailing");
    expect(ready.status).toBe("False");
    expect(ready.message).toMatch(
      /^serving pod weather-s3-badkey-serving-\S+: the model server exited with code 2: .*access denied by http:\/\/127\.0\.0\.1:\d+ \(SignatureDoesNotMatch/,
    );
    expect(ready.message).toContain("spec.model.s3.credentialsSecretRef");
    const log = (await kubectl(["logs", "-n", ns.name, "deployment/weather-s3-badkey-serving", "-c", "server"])).stdout;
    expect(log).toContain("access denied");
    for (const text of [ready.message, log, (await kubectl(["get", "events", "-n", ns.name, "-o", "json"])).stdout, operator.logs()]) {
      expect(text).not.toContain("not-the-secret-key-77");
      expect(text).not.toContain(s3.secretAccessKey);
    }
  });
});
