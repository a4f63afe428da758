// Given a ModelDeployment whose operator has written history, windows and a gate, and its Events and Job
// on a real API server, `ballast history` tells the story a user would otherwise piece together from
// `kubectl get md -o yaml`, `kubectl get events` and `kubectl get jobs`.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { ModelDeployment } from "../../../src/api/index.js";
import type { ModelStory } from "../../../src/api/model-story.js";
import { PROMOTED_STATUS } from "../../support/model-story.js";
import { clusterEnv, ensureNamespace, installCrds, kubectl, kubectlOk } from "../api/kubectl.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const BALLAST = `${repoRoot}bin/ballast`;
const namespace = "cli-history";
const name = "penguins";

function ballast(args: string[]) {
  return spawnSync(BALLAST, args, { encoding: "utf8", env: clusterEnv(), timeout: 60_000 });
}

describe("ballast history", () => {
  beforeAll(() => {
    installCrds(repoRoot);
    ensureNamespace(namespace);
    const md = parse(readFileSync(`${repoRoot}/examples/weather-classifier.yaml`, "utf8")) as ModelDeployment;
    md.metadata = { name, namespace };
    kubectlOk(["apply", "-f", "-"], JSON.stringify(md));
    const uid = kubectlOk(["get", "md", name, "-n", namespace, "-o", "jsonpath={.metadata.uid}"]);
    // What the operator writes, written here as the cluster admin: this test is about reading it back.
    const status = { status: PROMOTED_STATUS };
    kubectlOk(["patch", "md", name, "-n", namespace, "--subresource=status", "--type=merge", "-p", JSON.stringify(status)]);
    const event = (reason: string, type: string, message: string, objectUid: string) => ({
      apiVersion: "v1",
      kind: "Event",
      metadata: { generateName: `${name}.`, namespace },
      involvedObject: { apiVersion: "ballast.dev/v1alpha1", kind: "ModelDeployment", name, namespace, uid: objectUid },
      reason,
      type,
      message,
      firstTimestamp: "2026-12-05T10:02:30Z",
      lastTimestamp: "2026-12-05T10:02:30Z",
      count: 1,
      source: { component: "ballast-operator" },
    });
    kubectlOk(["create", "-f", "-"], JSON.stringify(event("RetrainingStarted", "Normal", "accuracy 0.45 < 0.8 for 3 windows", uid)));
    // An Event of an earlier ModelDeployment of the same name: not this one's story.
    kubectlOk(["create", "-f", "-"], JSON.stringify(event("Halted", "Warning", "from a previous life", "00000000-0000-0000-0000-000000000000")));
    const job = {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: { name: `${name}-retrain-1`, namespace, labels: { "ballast.dev/model-deployment": name } },
      // Suspended: the story reads the Job, nothing needs to run.
      spec: {
        suspend: true,
        template: { spec: { restartPolicy: "Never", containers: [{ name: "train", image: "ghcr.io/ballast-dev/ballast:test", args: ["--version"] }] } },
      },
    };
    kubectlOk(["apply", "-f", "-"], JSON.stringify(job));
  }, 120_000);

  afterAll(() => {
    kubectl(["delete", "namespace", namespace, "--wait=false"]);
  });

  it("prints versions, steps, the gate, the Job and the windows as tables", () => {
    const res = ballast(["history", name, "-n", namespace]);
    expect(res.stderr).toBe("");
    expect(res.status).toBe(0);
    expect(res.stdout).toContain(`ModelDeployment ${namespace}/${name} (model weather): serving v2, previous v1`);
    expect(res.stdout).toContain("loop Stable since 2026-12-05 10:05:00: promotion of v2 is final");
    expect(res.stdout).toMatch(/RetrainingStarted\s+accuracy 0\.45 < 0\.8 for 3 windows/);
    expect(res.stdout).toMatch(/Promoted\s+v2 \(from v1\)\s+0\.938/);
    expect(res.stdout).toContain("accuracy 0.938 vs 0.563 on 16 rows");
    expect(res.stdout).toMatch(new RegExp(`${name}-retrain-1\\s+Pending`));
    expect(res.stdout).toContain("accuracy    █▄·");
    expect(res.stdout).not.toContain("from a previous life");
  });

  it("prints the same story as JSON for scripts", () => {
    const res = ballast(["history", name, "-n", namespace, "-o", "json"]);
    expect(res.status).toBe(0);
    const story = JSON.parse(res.stdout) as ModelStory;
    expect(story.versions.map((v) => [v.version, v.last])).toEqual([
      ["v1", "Served"],
      ["v2", "Promoted"],
    ]);
    expect(story.steps.map((s) => s.what)).toEqual(["Served", "RetrainingStarted", "Retrained", "Promoted"]);
    expect(story.windows).toHaveLength(3);
    expect(story.gate?.recent).toEqual({ rows: 16, candidate: 0.938, serving: 0.563 });
  });

  it("says which ModelDeployment is missing and exits 1", () => {
    const res = ballast(["history", "nope", "-n", namespace]);
    expect(res.status).toBe(1);
    expect(res.stderr.trim()).toBe(`ballast history: ModelDeployment ${namespace}/nope not found`);
  });

  it("refuses an unknown output format as a usage error", () => {
    const res = ballast(["history", name, "-n", namespace, "-o", "yaml"]);
    expect(res.status).toBe(2);
    expect(res.stderr).toContain("-o, --output");
  });
});
