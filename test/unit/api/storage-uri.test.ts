import { describe, expect, it } from "vitest";
import { STORAGE_URI_REGEX, buildModelDeploymentCrd, parseStorageUri } from "../../../src/api/index.js";

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

  it.each(["s3://bucket/models", "file://relative/path", "pvc://Bad_Claim/x", "models/weather", ""])("rejects %j naming the field", (uri) => {
    expect(() => parseStorageUri(uri, "spec.model.storageUri")).toThrow(/^spec\.model\.storageUri: .* must be pvc:\/\//);
  });

  // A path joined onto the claim's mount root (`monitoring.reference.uri`, data sources, the store) must stay under it.
  it.each(["pvc://claim/../../etc/x", "pvc://claim/..", "pvc://claim/a/../../b", "file:///data/../etc/shadow"])(
    'rejects %j: a ".." segment, naming the field',
    (uri) => {
      expect(() => parseStorageUri(uri, "spec.monitoring.reference.uri")).toThrow(
        /^spec\.monitoring\.reference\.uri: .* must not contain "\.\." path segments/,
      );
      expect(new RegExp(STORAGE_URI_REGEX).test(uri)).toBe(false);
    },
  );

  it("keeps names that merely contain dots", () => {
    expect(parseStorageUri("pvc://claim/a..b/.hidden/./...")).toEqual({ scheme: "pvc", claimName: "claim", path: "a..b/.hidden/./..." });
    expect(parseStorageUri("file:///srv/..models")).toEqual({ scheme: "file", path: "/srv/..models" });
    expect(parseStorageUri("pvc://claim//team/")).toEqual({ scheme: "pvc", claimName: "claim", path: "/team" });
  });

  it("is the very pattern the CRD's CEL rule checks", () => {
    const rules = JSON.stringify(buildModelDeploymentCrd()).match(/self\.matches\('[^']*'\)/g) ?? [];
    expect(rules.length).toBeGreaterThanOrEqual(3);
    for (const rule of rules) expect(rule).toBe(`self.matches('${STORAGE_URI_REGEX}')`);
  });
});
