// The release as a user gets it: `make release-artifacts` files that verify, install.yaml equal to the kustomize
// base, the chart pushed to a real OCI registry (CNCF distribution, started here rather than by `ballast dev up`)
// and installed from oci:// into the local cluster, where the operator serves the example; `helm upgrade` from
// the previous chart version and `helm uninstall` leave nothing behind but the CRD, which Helm keeps by design.
import { execFileSync, spawnSync } from "node:child_process";
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { clusterKubectl, waitFor } from "../../support/cluster.js";
import { clusterEnv, ensureNamespace, kubectl, kubectlOk } from "../api/kubectl.js";
import { ensureRegistryBinary, startRegistry, type LocalRegistry } from "./registry.js";
import { removeWeatherExample, serveWeatherExample } from "../api/weather-example.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const release = "ballast-oci";
const modelsNamespace = "release-models";
// No release has been tagged yet, so "the previous version" is today's chart packaged under a semver
// pre-release of its version (which sorts below it): the upgrade path Helm takes is the same for any two versions.
const chartVersion = /^version:\s*(\S+)/m.exec(readFileSync(`${repoRoot}charts/ballast/Chart.yaml`, "utf8"))![1]!;
const previousVersion = `${chartVersion}-previous.0`;

let helm = "";
let registry: LocalRegistry | undefined;
let work = "";
let releaseDir = "";

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  const res = spawnSync(command, args, { encoding: "utf8", env, timeout: 300_000 });
  if (res.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (${res.status}): ${res.stderr}${res.error?.message ?? ""}`);
  return res.stdout;
}

const helmCluster = (...args: string[]) => run(helm, args, clusterEnv());
const chartRef = () => `oci://${registry!.host}/ballast/charts/ballast`;

/** Objects as `kind/namespace/name` plus their content, comments and document order aside. */
function objectsOf(yaml: string): Map<string, unknown> {
  const docs = parseAllDocuments(yaml).map((d) => d.toJSON() as { kind: string; metadata: { name: string; namespace?: string } } | null);
  return new Map(docs.filter((d) => d !== null).map((d) => [`${d.kind}/${d.metadata.namespace ?? ""}/${d.metadata.name}`, d]));
}

/** Every object in the cluster that carries the release's instance label, namespaced or not, as kind/name. */
function releaseObjects(): string[] {
  const kinds = kubectlOk(["api-resources", "--verbs=list", "-o", "name"]).trim().split("\n");
  // One kubectl call over every listable kind; events are records of the past, not objects the chart made.
  const res = kubectl([
    "get",
    kinds.filter((k) => k !== "events" && k !== "events.events.k8s.io").join(","),
    "-A",
    "-l",
    `app.kubernetes.io/instance=${release}`,
    "-o",
    "name",
  ]);
  if (res.status !== 0) throw new Error(`kubectl get by label: ${res.stderr}`);
  return res.stdout.trim().split("\n").filter(Boolean).sort();
}

function deploymentAvailable(): void {
  const res = kubectl(["rollout", "status", `deployment/${release}`, "-n", release, "--timeout=180s"]);
  if (res.status !== 0) {
    const logs = kubectl(["logs", `deployment/${release}`, "-n", release, "--tail=30"]);
    throw new Error(`operator not available: ${res.stderr}\n${kubectl(["get", "pods", "-n", release, "-o", "wide"]).stdout}\n${logs.stdout}${logs.stderr}`);
  }
}

describe("release artifacts and the chart from a real OCI registry", () => {
  beforeAll(async () => {
    helm = execFileSync(`${repoRoot}hack/helm/ensure-helm.sh`, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    const registryBinary = ensureRegistryBinary();
    work = mkdtempSync(join(tmpdir(), "ballast-release-"));
    releaseDir = join(work, "release");
    run(`${repoRoot}hack/release/artifacts.sh`, [releaseDir], { ...process.env, KUBECTL: clusterKubectl() });
    registry = await startRegistry(registryBinary);
    ensureNamespace(modelsNamespace);
  }, 900_000);

  afterAll(async () => {
    spawnSync(helm, ["uninstall", release, "--namespace", release, "--wait", "--timeout", "120s", "--ignore-not-found"], { env: clusterEnv() });
    await registry?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("make release-artifacts writes the chart, install.yaml and crds.yaml, and SHA256SUMS verifies them", () => {
    expect(spawnSync("sha256sum", ["--strict", "-c", "SHA256SUMS"], { cwd: releaseDir, encoding: "utf8" }).stdout.trim().split("\n")).toEqual([
      `ballast-${chartVersion}.tgz: OK`,
      "install.yaml: OK",
      "crds.yaml: OK",
    ]);
    const chartMeta = run("tar", ["-xzOf", join(releaseDir, `ballast-${chartVersion}.tgz`), "ballast/Chart.yaml"]);
    expect(chartMeta).toMatch(new RegExp(`^version: ${chartVersion.replaceAll(".", "\\.")}$`, "m"));
    expect(readFileSync(join(releaseDir, "crds.yaml"), "utf8")).toBe(readFileSync(`${repoRoot}crds/ballast.dev_modeldeployments.yaml`, "utf8"));
  });

  it("install.yaml is the same set of objects as kubectl kustomize deploy/base and applies cleanly server-side", () => {
    const installYaml = readFileSync(join(releaseDir, "install.yaml"), "utf8");
    const installed = objectsOf(installYaml);
    expect(installed).toEqual(objectsOf(kubectlOk(["kustomize", `${repoRoot}deploy/base`])));
    expect([...installed.keys()]).toContain("CustomResourceDefinition//modeldeployments.ballast.dev");
    // A dry run: applying for real would start a second operator watching every namespace of the shared test
    // cluster. The server still runs admission, schema and RBAC validation on every object.
    ensureNamespace("ballast-system");
    const res = kubectl(["apply", "--server-side", "--dry-run=server", "--field-manager=ballast-tests", "--force-conflicts", "-f", "-"], installYaml);
    expect(res.stderr.replace(/^Warning:.*\n?/gm, "")).toBe("");
    expect(res.status).toBe(0);
    expect(res.stdout.trim().split("\n")).toHaveLength(installed.size);
  });

  it("make release-push refuses a release directory that no longer matches its SHA256SUMS, and pushes nothing", () => {
    const tampered = join(work, "tampered");
    cpSync(releaseDir, tampered, { recursive: true });
    appendFileSync(join(tampered, "install.yaml"), "# changed after the checksums\n");
    const res = spawnSync(`${repoRoot}hack/release/push.sh`, [`${registry!.host}/ballast`, tampered], { encoding: "utf8" });
    expect(res.status).toBe(2);
    expect(res.stderr).toContain(`${tampered} does not match its SHA256SUMS`);
    expect(spawnSync("curl", ["-sf", `http://${registry!.host}/v2/ballast/charts/ballast/tags/list`]).status).not.toBe(0);
  });

  it("make release-push pushes the chart to the registry as an OCI artifact beside the previous version, and the image", () => {
    // A one-layer image in an OCI layout stands in for dist/image/oci (make image takes minutes): what is
    // tested is that release-push sends the layout's image, unchanged, to <registry>/ballast:<appVersion>.
    const crane = execFileSync(`${repoRoot}hack/image/ensure-crane.sh`, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    writeFileSync(join(work, "hello.txt"), "hello\n");
    run("tar", ["-cf", join(work, "layer.tar"), "-C", work, "hello.txt"]);
    const scratch = `${registry!.host}/scratch/tiny:1`;
    run(crane, ["append", "--insecure", "--oci-empty-base", "-f", join(work, "layer.tar"), "-t", scratch]);
    const layout = join(work, "image-oci");
    run(crane, ["pull", "--insecure", "--format", "oci", scratch, layout]);

    run(`${repoRoot}hack/release/push.sh`, [`${registry!.host}/ballast`, releaseDir, layout]);
    const appVersion = /^appVersion:\s*"?([^"\s]+)/m.exec(readFileSync(`${repoRoot}charts/ballast/Chart.yaml`, "utf8"))![1]!;
    const digest = (ref: string) => run(crane, ["digest", "--insecure", ref]).trim();
    expect(digest(`${registry!.host}/ballast/ballast:${appVersion}`)).toBe(digest(scratch));
    const previous = join(work, "previous");
    run(helm, ["package", `${repoRoot}charts/ballast`, "--version", previousVersion, "--destination", previous]);
    run(helm, ["push", "--plain-http", join(previous, `ballast-${previousVersion}.tgz`), `oci://${registry!.host}/ballast/charts`]);
    const tags = JSON.parse(run("curl", ["-sf", `http://${registry!.host}/v2/ballast/charts/ballast/tags/list`])) as { tags: string[] };
    expect(tags.tags.sort()).toEqual([chartVersion, previousVersion].sort());
    const manifest = JSON.parse(
      run("curl", [
        "-sf",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        `http://${registry!.host}/v2/ballast/charts/ballast/manifests/${chartVersion}`,
      ]),
    ) as { config: { mediaType: string } };
    expect(manifest.config.mediaType).toBe("application/vnd.cncf.helm.config.v1+json");
  });

  it("helm install oci://… of the previous version runs the operator", () => {
    helmCluster(
      "install",
      release,
      chartRef(),
      "--plain-http",
      "--version",
      previousVersion,
      "--namespace",
      release,
      "--create-namespace",
      // The local cluster's pods share the host network; the operator watches only the example's namespace.
      "--set",
      `bindToPodIP=true,watchNamespaces={${modelsNamespace}}`,
      "--wait",
      "--timeout",
      "180s",
    );
    deploymentAvailable();
    expect(releaseObjects()).toContain(`service/${release}-metrics`);
  });

  it("helm upgrade to this version from the registry rolls the operator and leaves no object the new values dropped", async () => {
    // metrics.enabled=false drops the metrics Service: an upgrade that left it behind would be an orphan.
    helmCluster(
      "upgrade",
      release,
      chartRef(),
      "--plain-http",
      "--version",
      chartVersion,
      "--namespace",
      release,
      "--reuse-values",
      "--set",
      "metrics.enabled=false",
      "--wait",
      "--timeout",
      "180s",
    );
    deploymentAvailable();
    const history = JSON.parse(helmCluster("history", release, "--namespace", release, "-o", "json")) as { revision: number; chart: string; status: string }[];
    expect(history.map((h) => [h.revision, h.chart, h.status])).toEqual([
      [1, `ballast-${previousVersion}`, "superseded"],
      [2, `ballast-${chartVersion}`, "deployed"],
    ]);
    const chartLabel = kubectlOk(["get", "deployment", release, "-n", release, "-o", "jsonpath={.metadata.labels.helm\\.sh/chart}"]);
    expect(chartLabel).toBe(`ballast-${chartVersion}`);
    expect(releaseObjects()).not.toContain(`service/${release}-metrics`);
    // The old pod handed the Lease over on its way out (by deleting it): the new pod leads without waiting 15 s.
    const pod = kubectlOk(["get", "pods", "-n", release, "-l", `app.kubernetes.io/instance=${release}`, "-o", "jsonpath={.items[*].metadata.name}"]);
    const holder = () => kubectl(["get", "lease", "ballast-operator-leader", "-n", release, "-o", "jsonpath={.spec.holderIdentity}"]).stdout;
    await waitFor(`${pod} to hold the Lease`, async () => holder().startsWith(pod), 30_000);
    // The holder's pod owns the Lease, so the garbage collector deletes it once that pod is gone.
    const owner = kubectlOk([
      "get",
      "lease",
      "ballast-operator-leader",
      "-n",
      release,
      "-o",
      "jsonpath={.metadata.ownerReferences[*].kind}/{.metadata.ownerReferences[*].name}",
    ]);
    expect(owner).toBe(`Pod/${pod}`);
  });

  it("the operator installed from the registry serves the weather example: the ModelDeployment becomes Ready", () => {
    serveWeatherExample(modelsNamespace);
  });

  it("helm uninstall leaves no orphan: only the CRD (kept by Helm by design) remains", () => {
    // The example goes first, while the operator still runs to release its finalizer.
    removeWeatherExample(modelsNamespace);
    helmCluster("uninstall", release, "--namespace", release, "--wait", "--timeout", "120s");
    // The operator's pod stops on SIGTERM after its Deployment is gone; its last act is deleting its Lease.
    kubectlOk(["wait", "--for=delete", "pod", "-l", `app.kubernetes.io/instance=${release}`, "-n", release, "--timeout=120s"]);
    // Helm deleted RBAC and Lease at once, and the leader may have re-created its Lease before it stopped:
    // that one goes with its owner, the pod, in the garbage collector's time.
    kubectlOk(["wait", "--for=delete", "lease/ballast-operator-leader", "-n", release, "--timeout=60s"]);
    expect(releaseObjects()).toEqual([]);
    // Nothing the chart or the operator made survives in the release namespace (Helm's release Secrets and the
    // leader election Lease included); the namespace itself stays, as Helm never deletes one it did not template.
    const left = kubectl(["get", "all,secrets,configmaps,roles,rolebindings,serviceaccounts,leases", "-n", release, "-o", "name"]).stdout.trim().split("\n");
    expect(left.filter((name) => name !== "" && !/^(serviceaccount\/default|configmap\/kube-root-ca\.crt)$/.test(name))).toEqual([]);
    expect(kubectlOk(["get", "role", "-n", modelsNamespace, "-o", "name"]).trim()).toBe("");
    expect(kubectlOk(["get", "crd", "modeldeployments.ballast.dev", "-o", "name"]).trim()).toBe(
      "customresourcedefinition.apiextensions.k8s.io/modeldeployments.ballast.dev",
    );
  });
});
