// Given the local cluster, deploying the operator with kustomize (deploy/overlays/local: deploy/base
// binding its ports to the pod IP) runs it in-cluster under its own ServiceAccount and least-privilege
// RBAC, and the shipped example becomes Ready.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { computeKstatus, type ModelDeployment } from "../../../src/api/index.js";
import { healthCheckLuaFromDocs, runHealthCheck } from "../../unit/api/argocd-lua.js";
import { ensureNamespace, installCrds, kubectl, kubectlOk } from "./kubectl.js";
import { exampleIn, serveWeatherExample } from "./weather-example.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const namespace = "api-example";

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: { template?: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
}

/** deploy/overlays/local as kustomize renders it, with the operator watching only this file's namespace. */
function renderedBase(): Manifest[] {
  const docs = parseAllDocuments(kubectlOk(["kustomize", `${repoRoot}deploy/overlays/local`])).map((d) => d.toJSON() as Manifest);
  const operator = docs.find((d) => d.kind === "Deployment")!.spec!.template!.spec.containers[0]!;
  operator.env.find((e) => e.name === "WATCH_NAMESPACES")!.value = namespace;
  return docs;
}

describe("the kustomize deployment on the local cluster", () => {
  beforeAll(() => {
    installCrds(repoRoot);
    ensureNamespace(namespace);
    const manifests = renderedBase()
      .map((d) => stringify(d))
      .join("---\n");
    kubectlOk(["apply", "--server-side", "--force-conflicts", "--field-manager=ballast-tests", "-f", "-"], manifests);
  });

  afterAll(() => {
    kubectl(["delete", "modeldeployment", "weather", "-n", namespace, "--ignore-not-found", "--timeout=60s"]);
    // Everything the overlay created except the CRD and the namespace, which other suites share.
    const rest = renderedBase().filter((d) => d.kind !== "CustomResourceDefinition" && d.kind !== "Namespace");
    kubectl(["delete", "--ignore-not-found", "--wait=false", "-f", "-"], rest.map((d) => stringify(d)).join("---\n"));
  });

  it("the operator Deployment becomes available with its probes, under the restricted security context", () => {
    const res = kubectl(["rollout", "status", "deployment/ballast-operator", "-n", "ballast-system", "--timeout=180s"]);
    if (res.status !== 0) {
      const pods = kubectl(["get", "pods", "-n", "ballast-system", "-o", "wide"]).stdout;
      const logs = kubectl(["logs", "deployment/ballast-operator", "-n", "ballast-system", "--tail=30"]);
      throw new Error(`operator not available: ${res.stderr}\n${pods}\n${logs.stdout}${logs.stderr}`);
    }
    const sa = kubectlOk([
      "get",
      "pods",
      "-n",
      "ballast-system",
      "-l",
      "app.kubernetes.io/component=operator",
      "-o",
      "jsonpath={.items[0].spec.serviceAccountName}",
    ]);
    expect(sa).toBe("ballast-operator");
  });

  it("the example ModelDeployment, with its model store claim, becomes Ready and kubectl get shows it", () => {
    serveWeatherExample(namespace);
    // The printer columns as a user reads them in `kubectl get md`.
    const [header, line] = kubectlOk(["get", "md", "weather", "-n", namespace]).trim().split("\n");
    // kubectl aligns columns under their headers; empty cells (no drift measured yet) are blanks.
    const starts = [...header!.matchAll(/\S+/g)].map((m) => ({ name: m[0], at: m.index }));
    const columns = Object.fromEntries(starts.map((c, i) => [c.name, line!.slice(c.at, starts[i + 1]?.at).trim()]));
    expect(columns).toMatchObject({ NAME: "weather", MODEL: "weather", READY: "True" });

    // The status the operator really wrote reads as Current to Flux and Healthy to Argo CD (docs/gitops.md).
    const live = JSON.parse(kubectlOk(["get", "md", "weather", "-n", namespace, "-o", "json"])) as ModelDeployment;
    expect(computeKstatus(live).status).toBe("Current");
    expect(runHealthCheck(healthCheckLuaFromDocs(), live).status).toBe("Healthy");
  });

  it("a ModelDeployment whose model store claim does not exist is Stalled, which Argo CD shows as Degraded", () => {
    const obj = parse(exampleIn("weather-classifier.yaml", namespace)) as Manifest & { spec: { model: { storageUri: string } } };
    obj.metadata.name = "no-store";
    obj.spec.model.storageUri = "pvc://missing-claim/store";
    kubectlOk(["apply", "-f", "-"], stringify(obj));
    kubectlOk(["wait", "--for=condition=Stalled", "md/no-store", "-n", namespace, "--timeout=120s"]);
    const live = JSON.parse(kubectlOk(["get", "md", "no-store", "-n", namespace, "-o", "json"])) as ModelDeployment;
    expect(computeKstatus(live).status).toBe("Failed");
    const health = runHealthCheck(healthCheckLuaFromDocs(), live);
    expect(health.status).toBe("Degraded");
    expect(health.message).toContain("missing-claim");
    kubectl(["delete", "md", "no-store", "-n", namespace, "--timeout=60s"]);
  });
});
