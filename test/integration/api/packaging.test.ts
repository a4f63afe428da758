// What users install (helm template, kustomize, examples/) is accepted by a real API server.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { clusterEnv, ensureNamespace, installCrds, kubectl, kubectlOk } from "./kubectl.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const releaseNamespace = "ballast-packaging";
let helm = "";

function helmTemplate(...set: string[]): string {
  const args = ["template", "ballast", `${repoRoot}charts/ballast`, "--namespace", releaseNamespace, "--include-crds", ...set.flatMap((s) => ["--set", s])];
  const res = spawnSync(helm, args, { encoding: "utf8" });
  if (res.status !== 0) throw new Error(`helm ${args.join(" ")}: ${res.stderr}`);
  return res.stdout;
}

/** Server-side dry run: admission, schema and RBAC validation of every object, nothing persisted. */
function dryRunServer(manifests: string): string {
  const res = kubectl(["apply", "--server-side", "--force-conflicts", "--dry-run=server", "--field-manager=ballast-tests", "-f", "-"], manifests);
  expect(res.stderr.replace(/^Warning:.*\n?/gm, "")).toBe("");
  expect(res.status).toBe(0);
  return res.stdout;
}

describe("packaging on the real API server", () => {
  beforeAll(() => {
    helm = execFileSync(`${repoRoot}hack/helm/ensure-helm.sh`, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    installCrds(repoRoot);
    for (const ns of [releaseNamespace, "team-a", "team-b"]) ensureNamespace(ns);
  }, 900_000);

  it("accepts helm template output with default values (kubectl apply --dry-run=server)", () => {
    const out = dryRunServer(helmTemplate());
    for (const object of [
      "customresourcedefinition.apiextensions.k8s.io/modeldeployments.ballast.dev",
      "serviceaccount/ballast",
      "clusterrole.rbac.authorization.k8s.io/ballast",
      "clusterrolebinding.rbac.authorization.k8s.io/ballast",
      "role.rbac.authorization.k8s.io/ballast-leader-election",
      "service/ballast-metrics",
      "deployment.apps/ballast",
    ]) {
      expect(out).toContain(object);
    }
  });

  it("accepts helm template output for an HA, namespace-scoped install without metrics", () => {
    const out = dryRunServer(helmTemplate("replicaCount=2", "watchNamespaces={team-a,team-b}", "metrics.enabled=false", "image.tag=0.1.0"));
    expect(out).toContain("role.rbac.authorization.k8s.io/ballast serverside-applied (server dry run)");
    expect(out).not.toContain("service/ballast-metrics");
  });

  it("accepts the kustomize base and the example overlay", () => {
    ensureNamespace("ballast-system");
    for (const dir of ["deploy/base", "deploy/overlays/example"]) {
      const out = dryRunServer(kubectlOk(["kustomize", `${repoRoot}${dir}`]));
      expect(out).toContain("deployment.apps/ballast-operator");
    }
  });

  it("runs the operator pod under the restricted Pod Security Standard", () => {
    const ns = "ballast-restricted";
    ensureNamespace(ns);
    kubectlOk(["label", "--overwrite", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"]);
    kubectlOk(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "psa-check", namespace: ns } }));
    const rendered = parseAllDocuments(helmTemplate()).map((d) => d.toJSON() as { kind: string; spec?: { template?: { spec: unknown } } });
    const template = rendered.find((d) => d?.kind === "Deployment")!.spec!.template!;
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "ballast-operator-psa", namespace: ns },
      spec: { ...(template.spec as object), serviceAccountName: "psa-check" },
    };
    const res = kubectl(["create", "--dry-run=server", "-f", "-"], JSON.stringify(pod));
    expect(res.stderr).toBe("");
    expect(res.status).toBe(0);
  });

  it("accepts the examples (model store claim and ModelDeployment)", () => {
    // Into this file's namespace, so the check never touches objects other suites create in `default`.
    const manifests = ["examples/model-store-pvc.yaml", "examples/weather-classifier.yaml"].map((file) => {
      const obj = parse(readFileSync(`${repoRoot}${file}`, "utf8")) as { metadata: { namespace?: string } };
      obj.metadata.namespace = releaseNamespace;
      return stringify(obj);
    });
    const out = dryRunServer(manifests.join("---\n"));
    expect(out).toContain("modeldeployment.ballast.dev/weather");
    expect(out).toContain("persistentvolumeclaim/ballast-models");
  });

  it("helm install runs the operator on the local cluster, scoped to its watched namespace by a Role", () => {
    const release = "ballast-helm";
    const helmEnv = (args: string[]) => spawnSync(helm, args, { encoding: "utf8", env: clusterEnv(), timeout: 300_000 });
    ensureNamespace("helm-models");
    const install = helmEnv([
      "upgrade",
      "--install",
      release,
      `${repoRoot}charts/ballast`,
      "--namespace",
      release,
      "--create-namespace",
      "--set",
      "bindToPodIP=true",
      "--set",
      "watchNamespaces={helm-models}",
      "--wait",
      "--timeout",
      "180s",
    ]);
    try {
      expect(install.stderr).not.toMatch(/Error/);
      expect(install.status).toBe(0);
      // Available means /readyz passed: the informers synced with nothing but the Role in helm-models.
      kubectlOk(["rollout", "status", `deployment/${release}`, "-n", release, "--timeout=120s"]);
      expect(kubectl(["get", "clusterrole", release]).status).not.toBe(0);
      expect(kubectlOk(["get", "role", release, "-n", "helm-models", "-o", "name"]).trim()).toBe(`role.rbac.authorization.k8s.io/${release}`);
      const holder = kubectlOk(["get", "lease", "ballast-operator-leader", "-n", release, "-o", "jsonpath={.spec.holderIdentity}"]);
      expect(holder).toMatch(new RegExp(`^${release}-`));
    } finally {
      helmEnv(["uninstall", release, "--namespace", release, "--wait", "--timeout", "120s"]);
    }
  });
});
