// How `ballast serve/train` find an s3:// store from their environment (what the operator sets from spec.model.s3,
// or what a user exports by hand), and what they refuse before sending a request.
import { describe, expect, it } from "vitest";
import { S3ModelStore, s3SettingsFromEnv } from "../../../src/runtime/s3-store.js";
import { StoreError, openStore } from "../../../src/runtime/store.js";

const KEYS = { AWS_ACCESS_KEY_ID: "AKIDEXAMPLE", AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };

describe("S3 settings from the environment", () => {
  it("defaults to AWS S3 in us-east-1 with virtual-hosted addressing", () => {
    expect(s3SettingsFromEnv(KEYS)).toEqual({
      endpoint: "https://s3.us-east-1.amazonaws.com",
      region: "us-east-1",
      forcePathStyle: false,
      accessKeyId: "AKIDEXAMPLE",
      secretAccessKey: KEYS.AWS_SECRET_ACCESS_KEY,
    });
    expect(s3SettingsFromEnv({ ...KEYS, AWS_DEFAULT_REGION: "eu-west-1" }).endpoint).toBe("https://s3.eu-west-1.amazonaws.com");
  });

  it("reads the AWS CLI's names, the S3-specific endpoint first, and Ballast's path-style switch", () => {
    const s = s3SettingsFromEnv({
      ...KEYS,
      AWS_ENDPOINT_URL: "https://all.example.com",
      AWS_ENDPOINT_URL_S3: "https://minio.example.com:9000/",
      AWS_REGION: "eu-central-1",
      AWS_DEFAULT_REGION: "us-west-2",
      AWS_SESSION_TOKEN: "token",
      BALLAST_S3_FORCE_PATH_STYLE: "true",
    });
    expect(s).toMatchObject({ endpoint: "https://minio.example.com:9000", region: "eu-central-1", forcePathStyle: true, sessionToken: "token" });
    expect(() => s3SettingsFromEnv({ ...KEYS, BALLAST_S3_FORCE_PATH_STYLE: "yes" })).toThrow(
      'env BALLAST_S3_FORCE_PATH_STYLE must be "true" or "false", got "yes"',
    );
  });

  it("refuses to start without keys, naming the variables and the spec field", () => {
    expect(() => s3SettingsFromEnv({ AWS_ACCESS_KEY_ID: "only-the-id" })).toThrow(
      "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (on a cluster: spec.model.s3.credentialsSecretRef)",
    );
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
