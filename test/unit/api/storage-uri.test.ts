import { describe, expect, it } from "vitest";
import { parseStorageUri } from "../../../src/api/index.js";

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
});
