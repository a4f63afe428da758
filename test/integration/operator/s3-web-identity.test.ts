// Given the local cluster, whose API server is a real OIDC issuer (service account issuer discovery, JWKS), and a
// real S3 server with an STS (SeaweedFS, trusting that issuer for one role), a ModelDeployment with
// spec.model.s3.webIdentity and no keys at all serves from the bucket: each pod's projected ServiceAccount token is
// exchanged with STS AssumeRoleWithWebIdentity for temporary credentials. A token for another audience is refused
// by STS, and the ModelDeployment says so in Ready's reason.
import type { V1Service } from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { WebIdentityCredentials } from "../../../src/runtime/s3-credentials.js";
import { S3ModelStore } from "../../../src/runtime/s3-store.js";
import { createTestNamespace, kubectl, testKubeConfig, waitFor } from "../../support/cluster.js";
import { ensureWeedBinary, startSeaweedS3, type SeaweedS3 } from "../../support/seaweedfs.js";
import { trainWeather } from "../../support/train-weather.js";
import { inferBody, loadWeather } from "../../unit/runtime/weather-fixture.js";
import { applyYaml, installCrdAndRbac, waitForReadyReason, kubectlJson, operatorKubeconfig, startOperator, type OperatorProcess } from "./operator-process.js";

const ISSUER = "https://kubernetes.default.svc.cluster.local";
const AUDIENCE = "sts.ballast.test";
const ROLE = "arn:aws:iam::111122223333:role/ballast-models";
const SERVICE_ACCOUNT = "model-reader";
const DISCOVERY_BINDING = "ballast-test-oidc-discovery";

/** SeaweedFS's IAM: STS, the cluster's issuer as an OIDC provider for AUDIENCE, and a role only `sub` may assume. */
function iamConfig(apiServer: string, caFile: string, sub: string): object {
  return {
    sts: { tokenDuration: "1h", maxSessionLength: "12h", issuer: "seaweedfs-sts", signingKey: randomBytes(32).toString("base64") },
    providers: [
      {
        name: "kubernetes",
        type: "oidc",
        enabled: true,
        config: { issuer: ISSUER, clientId: AUDIENCE, jwksUri: `${apiServer}/openid/v1/jwks`, tlsCaCert: caFile },
      },
    ],
    policy: { defaultEffect: "Deny" },
    policies: [
      {
        name: "ballast-models-rw",
        document: {
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Action: ["s3:*"], Resource: ["arn:aws:s3:::ballast-models", "arn:aws:s3:::ballast-models/*"] }],
        },
      },
    ],
    roles: [
      {
        roleName: "ballast-models",
        roleArn: ROLE,
        attachedPolicies: ["ballast-models-rw"],
        trustPolicy: {
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Principal: { Federated: "kubernetes" },
              Action: ["sts:AssumeRoleWithWebIdentity"],
              Condition: { StringEquals: { "oidc:sub": sub } },
            },
          ],
        },
      },
    ],
  };
}

describe("ballast operator: a ModelDeployment reading s3:// with web identity (STS AssumeRoleWithWebIdentity)", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let operator: OperatorProcess;
  let s3: SeaweedS3;
  let dir: string;

  async function applyModelDeployment(name: string, audience: string): Promise<void> {
    const md = {
      apiVersion: "ballast.dev/v1alpha1",
      kind: "ModelDeployment",
      metadata: { name, namespace: ns.name },
      spec: {
        model: {
          name: "weather",
          storageUri: "s3://ballast-models/store",
          s3: { endpoint: s3.endpoint, region: "us-east-1", forcePathStyle: true, webIdentity: { roleArn: ROLE, audience, stsEndpoint: s3.endpoint } },
        },
        serving: { replicas: 1, serviceAccountName: SERVICE_ACCOUNT },
        monitoring: {
          task: "classification",
          labelField: "weather",
          features: ["precipitation", "temp_max", "temp_min", "wind"].map((f) => ({ name: f, type: "numeric" })),
          window: { size: 200 },
        },
        policy: { paused: true },
      },
    };
    await applyYaml(stringify(md));
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "s3-web-identity-"));
    const cluster = testKubeConfig().getCurrentCluster()!;
    const caFile = join(dir, "ca.crt");
    writeFileSync(caFile, cluster.caData ? Buffer.from(cluster.caData, "base64") : "");
    await installCrdAndRbac();
    ns = await createTestNamespace("op-s3-oidc");
    // Issuer discovery for anyone, as on a cluster whose issuer STS must reach (EKS publishes it the same way).
    await kubectl(["delete", "clusterrolebinding", DISCOVERY_BINDING, "--ignore-not-found"]);
    const bound = await kubectl([
      "create",
      "clusterrolebinding",
      DISCOVERY_BINDING,
      "--clusterrole=system:service-account-issuer-discovery",
      "--group=system:unauthenticated",
    ]);
    expect(bound.code, bound.stderr).toBe(0);
    expect((await kubectl(["create", "serviceaccount", SERVICE_ACCOUNT, "-n", ns.name])).code).toBe(0);
    s3 = await startSeaweedS3(ensureWeedBinary(), { iamConfig: iamConfig(cluster.server, caFile, `system:serviceaccount:${ns.name}:${SERVICE_ACCOUNT}`) });
    await s3.createBucket("ballast-models");
    const res = trainWeather("s3://ballast-models/store", s3.env);
    expect(res.status, res.stderr).toBe(0);
    operator = await startOperator({ kubeconfig: operatorKubeconfig(mkdtempSync(join(tmpdir(), "s3-oidc-kc-"))), args: ["--namespaces", ns.name] });
  }, 900_000);

  afterAll(async () => {
    if (ns) await kubectl(["delete", "md", "--all", "-n", ns.name, "--wait=true", "--timeout=90s"]);
    const code = await operator?.stop();
    await ns?.remove();
    await kubectl(["delete", "clusterrolebinding", DISCOVERY_BINDING, "--ignore-not-found"]);
    await s3?.stop();
    expect(code).toBe(0);
  });

  it("exchanges a ServiceAccount token for temporary credentials that read the store, and STS refuses one for another audience", async () => {
    const token = async (audience: string) => {
      const r = await kubectl(["create", "token", SERVICE_ACCOUNT, "-n", ns.name, "--audience", audience, "--duration", "10m"]);
      expect(r.code, r.stderr).toBe(0);
      writeFileSync(join(dir, "token"), r.stdout.trim());
    };
    const settings = (credentials: WebIdentityCredentials) => ({ endpoint: s3.endpoint, region: "us-east-1", forcePathStyle: true, credentials });
    const credentials = new WebIdentityCredentials({
      roleArn: ROLE,
      tokenFile: join(dir, "token"),
      sessionName: "ballast-test",
      stsEndpoint: s3.endpoint,
      allowInsecureHttp: false,
    });
    await token(AUDIENCE);
    const store = new S3ModelStore("s3://ballast-models/store", "ballast-models", "store", settings(credentials));
    expect((await store.listVersions("weather")).map((v) => v.version)).toEqual(["v1"]);
    const session = await credentials.get();
    expect(session.sessionToken).toBeTruthy();
    expect(session.expiresAt! - Date.now()).toBeGreaterThan(10 * 60_000);
    // Cached: the same session until close to its expiry.
    expect(await credentials.get()).toBe(session);

    await token("someone-else");
    const other = new WebIdentityCredentials({
      roleArn: ROLE,
      tokenFile: join(dir, "token"),
      sessionName: "ballast-test",
      stsEndpoint: s3.endpoint,
      allowInsecureHttp: false,
    });
    const refused = await new S3ModelStore("s3://ballast-models/store", "ballast-models", "store", settings(other)).listVersions("weather").then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(refused?.message).toMatch(new RegExp(`^STS AssumeRoleWithWebIdentity for ${ROLE} at ${s3.endpoint} refused \\(`));
    expect(refused?.message).toContain(`check the role ${ROLE}`);
  });

  it("serves from the bucket with only the role: no keys anywhere in the pod", async () => {
    await applyModelDeployment("weather-oidc", AUDIENCE);
    const wait = await kubectl(["wait", "--for=condition=Ready", "md/weather-oidc", "-n", ns.name, "--timeout=240s"]);
    expect(wait.stdout, `${wait.stderr}\n${(await kubectl(["get", "md", "weather-oidc", "-n", ns.name, "-o", "yaml"])).stdout}`).toContain("condition met");
    const dep = (await kubectl(["get", "deployment", "weather-oidc-serving", "-n", ns.name, "-o", "json"])).stdout;
    expect(dep).not.toContain("AWS_ACCESS_KEY_ID");
    expect(dep).toContain("AWS_WEB_IDENTITY_TOKEN_FILE");
    const svc = await kubectlJson<V1Service>(["get", "service", "weather-oidc", "-n", ns.name]);
    const url = `http://${svc.spec!.clusterIP}:${svc.spec!.ports![0]!.port}`;
    const res = await waitFor(
      "infer through the Service",
      async () => {
        const r = await fetch(`${url}/v2/models/weather/infer`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(inferBody([loadWeather()[0]!], "oidc-0")),
        }).catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      },
      60_000,
      500,
    );
    expect(((await res.json()) as { model_version: string }).model_version).toBe("v1");
  });

  it("with a token for another audience, never becomes Ready, and Ready's reason says STS refused the role", async () => {
    await applyModelDeployment("weather-oidc-aud", "not-the-audience");
    const ready = await waitForReadyReason(ns.name, "weather-oidc-aud", "ServerFailing");
    expect(ready.status).toBe("False");
    expect(ready.message).toMatch(
      /the model server exited with code 2: .*STS AssumeRoleWithWebIdentity for arn:aws:iam::111122223333:role\/ballast-models at http:\/\/127\.0\.0\.1:\d+ refused \(/,
    );
    expect(ready.message).toContain("spec.model.s3.webIdentity");
  });
});
