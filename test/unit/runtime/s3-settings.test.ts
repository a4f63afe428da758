// How `ballast serve/train` find an s3:// store from their environment (what the operator sets from spec.model.s3,
// or what a user exports by hand), and what they refuse before sending a request.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { StaticCredentials, WebIdentityCredentials, roleSessionName, stsEndpointFromEnv } from "../../../src/runtime/s3-credentials.js";
import { S3ModelStore, s3SettingsFromEnv } from "../../../src/runtime/s3-store.js";
import { StoreError, openStore } from "../../../src/runtime/store.js";

const KEYS = { AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };

describe("S3 settings from the environment", () => {
  it("defaults to AWS S3 in us-east-1 with virtual-hosted addressing", async () => {
    const s = s3SettingsFromEnv(KEYS);
    expect(s).toMatchObject({ endpoint: "https://s3.us-east-1.amazonaws.com", region: "us-east-1", forcePathStyle: false });
    expect(s.credentials).toBeInstanceOf(StaticCredentials);
    expect(await s.credentials.get()).toEqual({ accessKeyId: "AKIDEXAMPLE", secretAccessKey: KEYS.AWS_SECRET_ACCESS_KEY });
    expect(s3SettingsFromEnv({ ...KEYS, AWS_DEFAULT_REGION: "eu-west-1" }).endpoint).toBe("https://s3.eu-west-1.amazonaws.com");
  });

  it("reads the AWS CLI's names, the S3-specific endpoint first, and Ballast's path-style switch", async () => {
    const s = s3SettingsFromEnv({
      ...KEYS,
      AWS_ENDPOINT_URL: "https://all.example.com",
      AWS_ENDPOINT_URL_S3: "https://minio.example.com:9000/",
      AWS_REGION: "eu-central-1",
      AWS_DEFAULT_REGION: "us-west-2",
      AWS_SESSION_TOKEN: "token",
      BALLAST_S3_FORCE_PATH_STYLE: "true",
    });
    expect(s).toMatchObject({ endpoint: "https://minio.example.com:9000", region: "eu-central-1", forcePathStyle: true });
    expect(await s.credentials.get()).toMatchObject({ sessionToken: "token" });
    expect(() => s3SettingsFromEnv({ ...KEYS, BALLAST_S3_FORCE_PATH_STYLE: "yes" })).toThrow(
      'env BALLAST_S3_FORCE_PATH_STYLE must be "true" or "false", got "yes"',
    );
  });

  it("refuses to start without keys or a web identity, naming the variables and the spec fields", () => {
    const both =
      "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (on a cluster: spec.model.s3.credentialsSecretRef or spec.model.s3.webIdentity)";
    expect(() => s3SettingsFromEnv({ AWS_ACCESS_KEY_ID: "only-the-id" })).toThrow(`no S3 credentials: ${both}`);
    expect(() => s3SettingsFromEnv({ AWS_WEB_IDENTITY_TOKEN_FILE: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token" })).toThrow(
      `no S3 credentials (AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not): ${both}`,
    );
  });

  it("takes keys before web identity, and web identity with the STS endpoint the AWS CLI would use", () => {
    const role = { AWS_ROLE_ARN: "arn:aws:iam::123456789012:role/ballast-models", AWS_WEB_IDENTITY_TOKEN_FILE: "/var/run/secrets/token" };
    expect(s3SettingsFromEnv({ ...KEYS, ...role }).credentials).toBeInstanceOf(StaticCredentials);
    expect(s3SettingsFromEnv({ ...role, AWS_REGION: "eu-west-1" }).credentials).toBeInstanceOf(WebIdentityCredentials);
    expect(s3SettingsFromEnv(role).credentials.fix).toContain("role arn:aws:iam::123456789012:role/ballast-models");
    expect(stsEndpointFromEnv({}, "eu-west-1")).toBe("https://sts.eu-west-1.amazonaws.com");
    expect(stsEndpointFromEnv({ AWS_STS_REGIONAL_ENDPOINTS: "legacy" }, "eu-west-1")).toBe("https://sts.amazonaws.com");
    expect(stsEndpointFromEnv({ AWS_ENDPOINT_URL: "http://127.0.0.1:8333/", AWS_ENDPOINT_URL_STS: "https://sts.example.com/" }, "eu-west-1")).toBe(
      "https://sts.example.com",
    );
    expect(stsEndpointFromEnv({ AWS_ENDPOINT_URL: "http://127.0.0.1:8333/" }, "eu-west-1")).toBe("http://127.0.0.1:8333");
    expect(() => s3SettingsFromEnv({ ...role, AWS_ENDPOINT_URL_STS: "http://10.1.2.3:8333" })).toThrow(
      /STS endpoint http:\/\/10\.1\.2\.3:8333: .*BALLAST_ALLOW_INSECURE_HTTP=true/,
    );
  });

  it("names the pod in the role session, within what STS accepts", () => {
    expect(roleSessionName({ POD_NAME: "weather-serving-7d9f-x2k4q" })).toBe("ballast-weather-serving-7d9f-x2k4q");
    expect(roleSessionName({ AWS_ROLE_SESSION_NAME: "mine", POD_NAME: "p" })).toBe("mine");
    expect(roleSessionName({ POD_NAME: "x".repeat(100) })).toHaveLength(64);
  });

  it("says which token file it cannot read, and never asks STS without a token", async () => {
    const dir = mkdtempSync(join(tmpdir(), "s3-settings-"));
    try {
      const missing = join(dir, "token");
      const creds = new WebIdentityCredentials({
        roleArn: "arn:aws:iam::1:role/r",
        tokenFile: missing,
        sessionName: "s",
        stsEndpoint: "http://127.0.0.1:1",
        allowInsecureHttp: false,
      });
      await expect(creds.get()).rejects.toThrow(`cannot read the web identity token ${missing} (AWS_WEB_IDENTITY_TOKEN_FILE): ENOENT`);
      writeFileSync(missing, "\n");
      await expect(creds.get()).rejects.toThrow(`the web identity token ${missing} (AWS_WEB_IDENTITY_TOKEN_FILE) is empty`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses plain http to a host other than loopback unless BALLAST_ALLOW_INSECURE_HTTP=true, as the http store does", () => {
    const remote = s3SettingsFromEnv({ ...KEYS, AWS_ENDPOINT_URL_S3: "http://10.1.2.3:9000" });
    const err = (() => {
      try {
        openStore("s3://models/store", { s3: remote });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe("insecure");
    expect((err as StoreError).message).toContain("BALLAST_ALLOW_INSECURE_HTTP=true");
    expect(new S3ModelStore("s3://models/store", "models", "store", remote, true).bucket).toBe("models");
    const local = s3SettingsFromEnv({ ...KEYS, AWS_ENDPOINT_URL_S3: "http://127.0.0.1:8333" });
    expect(openStore("s3://models/team/store", { s3: local })).toMatchObject({ bucket: "models", prefix: "team/store", readOnly: false });
  });
});
