// The Helm chart lints clean, validates its values, and renders the same operator as deploy/ does.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, parse } from "yaml";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const chart = `${repoRoot}charts/ballast`;
let helm = "";

interface Rendered {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: unknown[];
  spec?: {
    replicas?: number;
    template?: { spec: { securityContext: unknown; containers: { args: string[]; env: { name: string; value?: string }[]; securityContext: unknown }[] } };
  };
}

function helmRun(args: string[]) {
  return spawnSync(helm, args, { encoding: "utf8", cwd: repoRoot });
}

function template(...set: string[]): Rendered[] {
  const res = helmRun(["template", "ballast", chart, "--namespace", "ballast-system", ...set.flatMap((s) => ["--set", s])]);
  if (res.status !== 0) throw new Error(`helm template failed: ${res.stderr}`);
  return parseAllDocuments(res.stdout)
    .map((d) => d.toJSON() as Rendered | null)
    .filter((d): d is Rendered => d !== null);
}

const operatorOf = (docs: Rendered[]) => docs.find((d) => d.kind === "Deployment")!.spec!.template!.spec;
const envOf = (docs: Rendered[], name: string) => operatorOf(docs).containers[0]!.env.find((e) => e.name === name)?.value;

describe("charts/ballast", () => {
  beforeAll(() => {
    // helm on PATH, else built once from hack/helm's Go module (minutes on a cold Go cache).
    helm = execFileSync(`${repoRoot}hack/helm/ensure-helm.sh`, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
  }, 900_000);

  it("passes helm lint --strict", () => {
    const res = helmRun(["lint", "--strict", chart]);
    expect(res.stdout + res.stderr).toContain("0 chart(s) failed");
    expect(res.status).toBe(0);
  });

  it("grants the operator exactly the rules of deploy/base/role.yaml", () => {
    const kustomizeRole = parse(readFileSync(`${repoRoot}deploy/base/role.yaml`, "utf8")) as Rendered;
    const clusterRole = template().find((d) => d.kind === "ClusterRole")!;
    expect(clusterRole.rules).toEqual(kustomizeRole.rules);
  });

  it("runs the operator with the same pod and container security context as deploy/base", () => {
    const deploy = parse(readFileSync(`${repoRoot}deploy/base/operator.yaml`, "utf8")) as Rendered;
    const fromKustomize = deploy.spec!.template!.spec;
    const fromChart = operatorOf(template());
    expect(fromChart.securityContext).toEqual(fromKustomize.securityContext);
    expect(fromChart.containers[0]!.securityContext).toEqual(fromKustomize.containers[0]!.securityContext);
    expect(fromChart.containers[0]!.args).toEqual(fromKustomize.containers[0]!.args);
  });

  it("watching listed namespaces gives a Role per namespace instead of a ClusterRole", () => {
    const docs = template("watchNamespaces={team-a,team-b}");
    expect(docs.filter((d) => d.kind === "ClusterRole")).toEqual([]);
    expect(docs.filter((d) => d.kind === "Role" && d.metadata.name === "ballast").map((d) => d.metadata.namespace)).toEqual(["team-a", "team-b"]);
    expect(envOf(docs, "WATCH_NAMESPACES")).toBe("team-a,team-b");
  });

  it("turns metrics off with metrics.enabled=false: no Service, --metrics-bind-address=0", () => {
    const docs = template("metrics.enabled=false");
    expect(docs.some((d) => d.kind === "Service")).toBe(false);
    expect(operatorOf(docs).containers[0]!.args).toContain("--metrics-bind-address=0");
  });

  it("passes the image to the operator as the default serving image", () => {
    expect(envOf(template("image.tag=1.2.3"), "BALLAST_IMAGE")).toBe("ghcr.io/ballast-dev/ballast:1.2.3");
  });

  it.each([
    ["replicaCount=0", "replicaCount"],
    ["image.pullPolicy=Sometimes", "pullPolicy"],
    ["replicas=2", "replicas"],
    ["watchNamespaces={Team_A}", "watchNamespaces"],
    ["logLevel=verbose", "logLevel"],
  ])("rejects --set %s with an error naming %s (values.schema.json)", (set, field) => {
    const res = helmRun(["template", "ballast", chart, "--set", set]);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toContain(field);
  });

  it("refuses two replicas without leader election", () => {
    const res = helmRun(["template", "ballast", chart, "--set", "replicaCount=2", "--set", "leaderElection.enabled=false"]);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toContain("replicaCount > 1 needs leaderElection.enabled=true");
  });
});
