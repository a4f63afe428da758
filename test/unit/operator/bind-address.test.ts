// --metrics-bind-address and --health-probe-bind-address read like controller-runtime's.
import { describe, expect, it } from "vitest";
import { parseBindAddress } from "../../../src/operator/bind-address.js";

describe("bind address flags", () => {
  it("parses bind addresses like controller-runtime and names the flag when one is wrong", () => {
    expect(parseBindAddress("--metrics-bind-address", ":8080")).toEqual({ host: "0.0.0.0", port: 8080 });
    expect(parseBindAddress("--metrics-bind-address", "127.0.0.1:9090")).toEqual({ host: "127.0.0.1", port: 9090 });
    expect(parseBindAddress("--metrics-bind-address", "0")).toBeUndefined();
    expect(() => parseBindAddress("--metrics-bind-address", "8080")).toThrow(/--metrics-bind-address: "8080" must be host:port/);
  });
});
