import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ballastBin as ballast } from "../runtime/local-processes.js";

const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(ballast, ["operator", ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 20_000 });

describe("ballast operator flags", () => {
  it("documents every flag and its environment variable in --help", () => {
    const res = run(["--help"]);
    expect(res.status).toBe(0);
    for (const text of [
      "--kubeconfig",
      "--namespaces",
      "WATCH_NAMESPACES",
      "--workers",
      "--metrics-bind-address",
      "--health-probe-bind-address",
      "--leader-elect",
      "--leader-election-namespace",
      "--leader-election-id",
      "--image",
      "ghcr.io/ballast-dev/ballast:",
    ])
      expect(res.stdout).toContain(text);
  });

  it("exits 2 naming the flag for bad values", () => {
    const workers = run(["--workers", "0"]);
    expect(workers.status).toBe(2);
    expect(workers.stderr).toContain("--workers must be an integer from 1 to 1000");
    const bind = run(["--metrics-bind-address", "8080"]);
    expect(bind.status).toBe(2);
    expect(bind.stderr).toContain('--metrics-bind-address: "8080" must be host:port');
    const ns = run(["--namespaces", "Team_A"]);
    expect(ns.status).toBe(2);
    expect(ns.stderr).toContain('"Team_A" is not a valid namespace name');
    const le = run([], { BALLAST_LEADER_ELECT: "maybe" });
    expect(le.status).toBe(2);
    expect(le.stderr).toContain('--leader-elect must be true or false, got "maybe"');
  });

  it("exits 2 when the kubeconfig does not exist, or leader election has no namespace outside a cluster", () => {
    const missing = run(["--kubeconfig", "/nonexistent/kubeconfig"]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("--kubeconfig /nonexistent/kubeconfig: no such file");
    const kubeconfig = join(mkdtempSync(join(tmpdir(), "op-cli-")), "kubeconfig");
    writeFileSync(
      kubeconfig,
      "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
    );
    const noLeaseNamespace = run(["--kubeconfig", kubeconfig, "--leader-elect"], { POD_NAMESPACE: "" });
    expect(noLeaseNamespace.status).toBe(2);
    expect(noLeaseNamespace.stderr).toContain("--leader-elect outside a cluster needs --leader-election-namespace");
  });
});
