import { describe, expect, it } from "vitest";
import { MODEL_STORE_URI_REGEX, buildModelDeploymentCrd, parseStorageUri } from "../../../src/api/index.js";

describe("parseStorageUri", () => {
  it("splits pvc://claim/path into the claim and a path relative to its root", () => {
    expect(parseStorageUri("pvc://models/store/weather")).toEqual({ scheme: "pvc", claimName: "models", path: "store/weather" });
    expect(parseStorageUri("pvc://models")).toEqual({ scheme: "pvc", claimName: "models", path: "" });
    expect(parseStorageUri("pvc://models/")).toEqual({ scheme: "pvc", claimName: "models", path: "" });
  });

  it("reads file:// as an absolute local path and keeps http(s) URLs whole", () => {
    expect(parseStorageUri("file:///var/lib/ballast/my%20models")).toEqual({ scheme: "file", path: "/var/lib/ballast/my models" });
    expect(parseStorageUri("https://models.example.com/store")).toEqual({ scheme: "https", url: "https://models.example.com/store" });
    expect(parseStorageUri("http://10.0.0.1:9000")).toEqual({ scheme: "http", url: "http://10.0.0.1:9000" });
  });

  it("splits s3://bucket/prefix into the bucket and a prefix without leading or trailing slashes", () => {
    expect(parseStorageUri("s3://ml-models/team/store/")).toEqual({ scheme: "s3", bucket: "ml-models", prefix: "team/store" });
    expect(parseStorageUri("s3://ml-models")).toEqual({ scheme: "s3", bucket: "ml-models", prefix: "" });
    expect(parseStorageUri("s3://ml.models//a")).toEqual({ scheme: "s3", bucket: "ml.models", prefix: "a" });
  });

  it.each(["s3://Bucket/models", "s3://ab/x", "s3:///models", "gs://bucket/models", "file://relative/path", "pvc://Bad_Claim/x", "models/weather", ""])(
    "rejects %j naming the field",
    (uri) => {
      expect(() => parseStorageUri(uri, "spec.model.storageUri")).toThrow(/^spec\.model\.storageUri: .* must be pvc:\/\//);
    },
  );

  it("accepts s3:// wherever a storage URI goes (store, reference profile, training data)", () => {
    expect(new RegExp(MODEL_STORE_URI_REGEX).test("s3://bucket/models")).toBe(true);
    expect(new RegExp(MODEL_STORE_URI_REGEX).test("s3://bucket/data/weather.csv")).toBe(true);
  });

  // A path joined onto the claim's mount root (`monitoring.reference.uri`, data sources, the store) must stay under it.
  it.each(["pvc://claim/../../etc/x", "pvc://claim/..", "pvc://claim/a/../../b", "file:///data/../etc/shadow", "s3://bucket/a/../b"])(
    'rejects %j: a ".." segment, naming the field',
    (uri) => {
      expect(() => parseStorageUri(uri, "spec.monitoring.reference.uri")).toThrow(
        /^spec\.monitoring\.reference\.uri: .* must not contain "\.\." path segments/,
      );
      expect(new RegExp(MODEL_STORE_URI_REGEX).test(uri)).toBe(false);
    },
  );

  it("keeps names that merely contain dots", () => {
    expect(parseStorageUri("pvc://claim/a..b/.hidden/./...")).toEqual({ scheme: "pvc", claimName: "claim", path: "a..b/.hidden/./..." });
    expect(parseStorageUri("file:///srv/..models")).toEqual({ scheme: "file", path: "/srv/..models" });
    expect(parseStorageUri("pvc://claim//team/")).toEqual({ scheme: "pvc", claimName: "claim", path: "/team" });
  });

  it("is the very pattern the CRD's CEL rules check, for the store, the reference profile and the data sources", () => {
    const rules = JSON.stringify(buildModelDeploymentCrd()).match(/self\.matches\('[^']*'\)/g) ?? [];
    expect(rules.length).toBeGreaterThanOrEqual(3);
    for (const rule of rules) expect(rule).toBe(`self.matches('${MODEL_STORE_URI_REGEX}')`);
  });
});
