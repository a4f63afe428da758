// Given a ModelDeployment whose store is s3://, the serving pods and the retraining Job get the endpoint, region,
// addressing style and references to the credentials Secret, never the keys themselves; other stores get none of it.
import type { V1EnvVar } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { applyModelDeploymentDefaults, type ModelDeploymentSpec, type ResolvedModelDeployment } from "../../../src/api/index.js";
import { desiredRetrainingJob, feedbackLogUri } from "../../../src/operator/loop/retraining-job.js";
import { desiredServingObjects } from "../../../src/operator/serving/desired-state.js";

const IMAGE = "ghcr.io/ballast-dev/ballast:0.1.0";

function modelDeployment(model: ModelDeploymentSpec["model"], servingEnv?: V1EnvVar[]): ResolvedModelDeployment {
  return {
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: "weather", namespace: "ml", uid: "1111-2222", generation: 1 },
    spec: applyModelDeploymentDefaults({
      model,
      ...(servingEnv ? { serving: { env: servingEnv } } : {}),
      monitoring: { features: [{ name: "wind", type: "numeric" }], labelField: "weather", task: "classification" },
    } as ModelDeploymentSpec),
  };
}

const s3Model = {
  name: "weather",
  storageUri: "s3://ml-models/store",
  s3: { endpoint: "http://minio.storage:9000", region: "eu-west-1", forcePathStyle: true, credentialsSecretRef: { name: "model-store-keys" } },
} as ModelDeploymentSpec["model"];

const S3_VARS = [
  { name: "AWS_ENDPOINT_URL_S3", value: "http://minio.storage:9000" },
  { name: "AWS_REGION", value: "eu-west-1" },
  { name: "BALLAST_S3_FORCE_PATH_STYLE", value: "true" },
  { name: "AWS_ACCESS_KEY_ID", valueFrom: { secretKeyRef: { name: "model-store-keys", key: "AWS_ACCESS_KEY_ID" } } },
  { name: "AWS_SECRET_ACCESS_KEY", valueFrom: { secretKeyRef: { name: "model-store-keys", key: "AWS_SECRET_ACCESS_KEY" } } },
  { name: "AWS_SESSION_TOKEN", valueFrom: { secretKeyRef: { name: "model-store-keys", key: "AWS_SESSION_TOKEN", optional: true } } },
];

const byName = (env: V1EnvVar[] | undefined) => new Map((env ?? []).map((e) => [e.name, e]));
const job = (md: ResolvedModelDeployment) =>
  desiredRetrainingJob(md, { attempt: 1, fromVersion: "v1", feedbackSince: "2026-01-01T00:00:00Z", defaultImage: IMAGE });

describe("pod environment for an s3:// model store", () => {
  it("gives the server and the sidecar the endpoint and Secret references, and both read the store", () => {
    const { deployment } = desiredServingObjects(modelDeployment(s3Model), { defaultImage: IMAGE });
    for (const c of deployment.spec!.template.spec!.containers) {
      const env = byName(c.env);
      for (const want of S3_VARS) expect(env.get(want.name), `${c.name} ${want.name}`).toEqual(want);
      expect(c.args).toEqual(expect.arrayContaining(["--store", "s3://ml-models/store"]));
    }
    // No volume for an object store: the sidecar's log spools on its emptyDir and is shipped to the bucket.
    expect(deployment.spec!.template.spec!.volumes!.map((v) => v.name)).not.toContain("model-store");
    expect(deployment.spec!.template.spec!.containers[1]!.args).toEqual(expect.arrayContaining(["--data-dir", "--ship-log"]));
    expect(deployment.spec!.template.spec!.containers[0]!.args).not.toContain("--ship-log");
    // The sidecar's own spool bound (1 GiB) unless the spec sets one.
    expect(deployment.spec!.template.spec!.containers[1]!.args).not.toContain("--log-max-bytes");
  });

  it("with webIdentity, gives every container that reads the store the role, a projected token for its audience and no keys", () => {
    const md = modelDeployment({
      name: "weather",
      storageUri: "s3://ml-models/store",
      s3: {
        region: "eu-west-1",
        webIdentity: { roleArn: "arn:aws:iam::123456789012:role/ballast-models", audience: "sts.amazonaws.com", stsEndpoint: "https://sts.example.com" },
      },
    } as ModelDeploymentSpec["model"]);
    const { deployment } = desiredServingObjects(md, { defaultImage: IMAGE });
    const train = job(md).spec!.template.spec!;
    const volume = {
      name: "s3-web-identity",
      projected: { sources: [{ serviceAccountToken: { audience: "sts.amazonaws.com", expirationSeconds: 3600, path: "token" } }] },
    };
    expect(deployment.spec!.template.spec!.volumes).toContainEqual(volume);
    expect(train.volumes).toContainEqual(volume);
    for (const c of [...deployment.spec!.template.spec!.containers, train.containers[0]!]) {
      const env = byName(c.env);
      expect(env.get("AWS_ROLE_ARN")?.value, c.name).toBe("arn:aws:iam::123456789012:role/ballast-models");
      expect(env.get("AWS_WEB_IDENTITY_TOKEN_FILE")?.value).toBe("/var/run/secrets/ballast.dev/s3-web-identity/token");
      expect(env.get("AWS_ENDPOINT_URL_STS")?.value).toBe("https://sts.example.com");
      expect(env.has("AWS_ACCESS_KEY_ID")).toBe(false);
      expect(c.volumeMounts).toContainEqual({ name: "s3-web-identity", mountPath: "/var/run/secrets/ballast.dev/s3-web-identity", readOnly: true });
    }
  });

  it("bounds the sidecar's unshipped spool by spec.model.s3.logSpoolBytes", () => {
    const { deployment } = desiredServingObjects(modelDeployment({ ...s3Model, s3: { ...s3Model.s3, logSpoolBytes: 65536 } }), { defaultImage: IMAGE });
    const args = deployment.spec!.template.spec!.containers[1]!.args!;
    expect(args.slice(args.indexOf("--ship-log"), args.indexOf("--ship-log") + 3)).toEqual(["--ship-log", "--log-max-bytes", "65536"]);
    // The emptyDir's limit sits above the spool's bound: the sidecar refuses feedback before the kubelet would evict the pod.
    const spool = deployment.spec!.template.spec!.volumes!.find((v) => v.name === "request-log")!;
    expect(Number(spool.emptyDir!.sizeLimit)).toBe(65536 + 128 * 1024 ** 2);
  });

  it("gives the retraining Job the same, and the shipped logs in the bucket as its feedback", () => {
    const md = modelDeployment(s3Model);
    const train = job(md).spec!.template.spec!.containers[0]!;
    const env = byName(train.env);
    for (const want of S3_VARS) expect(env.get(want.name)).toEqual(want);
    expect(env.get("TMPDIR")).toBeDefined();
    expect(feedbackLogUri(md)).toBe("s3://ml-models/store/weather/_log");
    expect(train.args![train.args!.indexOf("--feedback") + 1]).toBe("s3://ml-models/store/weather/_log");
  });

  it("passes a user's own store variables to the sidecar too, and none of their other variables", () => {
    const md = modelDeployment({ name: "weather", storageUri: "s3://ml-models/store" }, [
      { name: "AWS_ACCESS_KEY_ID", valueFrom: { secretKeyRef: { name: "mine", key: "id" } } },
      { name: "BALLAST_ALLOW_INSECURE_HTTP", value: "true" },
      { name: "OMP_NUM_THREADS", value: "2" },
    ]);
    const [server, sidecar] = desiredServingObjects(md, { defaultImage: IMAGE }).deployment.spec!.template.spec!.containers;
    expect(byName(server!.env).has("OMP_NUM_THREADS")).toBe(true);
    expect(byName(sidecar!.env).get("AWS_ACCESS_KEY_ID")).toEqual({ name: "AWS_ACCESS_KEY_ID", valueFrom: { secretKeyRef: { name: "mine", key: "id" } } });
    expect(byName(sidecar!.env).get("BALLAST_ALLOW_INSECURE_HTTP")?.value).toBe("true");
    expect(byName(sidecar!.env).has("OMP_NUM_THREADS")).toBe(false);
  });

  it("adds nothing for pvc://, file:// or http(s):// stores", () => {
    for (const storageUri of ["pvc://models/store", "file:///srv/models", "https://models.example.com/store"]) {
      const md = modelDeployment({ name: "weather", storageUri } as ModelDeploymentSpec["model"]);
      const names = [
        ...desiredServingObjects(md, { defaultImage: IMAGE }).deployment.spec!.template.spec!.containers,
        job(md).spec!.template.spec!.containers[0]!,
      ]
        .flatMap((c) => c.env ?? [])
        .map((e) => e.name);
      expect(names.filter((n) => n.startsWith("AWS_") || n.startsWith("BALLAST_S3"))).toEqual([]);
    }
  });
});
