// In the image `ballast dev` / `ballast demo` lack their devDependencies; the user gets one line naming the
// package and what to do, while any other failure to load keeps its own message.
import { describe, expect, it } from "vitest";
import { loadDevOnlyModule } from "../../../src/cli/dev-only-modules.js";

describe("loadDevOnlyModule", () => {
  it("turns a missing npm package into one line naming the command, the package and `npm ci`", async () => {
    const err = await loadDevOnlyModule("dev", () => import("@ballast-missing/x509-" + "h8")).catch((e: unknown) => e as Error);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toBe(
      "`ballast dev` needs the package @ballast-missing/x509-h8, a development dependency this installation does not have " +
        "(the Ballast image ships production dependencies only): run it from a Ballast checkout after `npm ci`",
    );
    expect(err.message).not.toContain("\n");
  });

  it("passes other errors through: a missing file of Ballast's own, or a module that throws", async () => {
    await expect(loadDevOnlyModule("demo", () => import("./no-such-file-of-ballast" + ".js"))).rejects.toThrow(/no-such-file-of-ballast/);
    await expect(loadDevOnlyModule("demo", () => Promise.reject(new Error("etcd failed to start")))).rejects.toThrow("etcd failed to start");
  });

  it("returns the module when it loads", async () => {
    const mod = await loadDevOnlyModule("dev", () => import("node:path"));
    expect(mod.join("a", "b")).toBe("a/b");
  });
});
