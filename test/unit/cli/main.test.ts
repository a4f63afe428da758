import { execFileSync, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { packageVersion } from "../../../src/cli/version.js";
import { ballastBin as ballast } from "../runtime/local-processes.js";

describe("bin/ballast", () => {
  it("prints the package version with --version", () => {
    expect(execFileSync(ballast, ["--version"], { encoding: "utf8" }).trim()).toBe(packageVersion());
  });

  it("prints usage with --help and exits 0", () => {
    const out = execFileSync(ballast, ["--help"], { encoding: "utf8" });
    expect(out).toContain("Usage: ballast");
  });

  it("gives a subcommand's --version to the subcommand, not the program", () => {
    const res = spawnSync(ballast, ["serve", "--version"], { encoding: "utf8" });
    expect(res.status).toBe(2);
    expect(res.stdout).not.toContain(packageVersion());
    expect(res.stderr).toMatch(/option '--version <[a-z]+>' argument missing/);
  });

  it("rejects an unknown command with exit code 2 and a hint", () => {
    const res = spawnSync(ballast, ["no-such-command"], { encoding: "utf8" });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain("unknown command");
  });
});
