// Given prometheus-operator's CRDs (the pinned release's own schemas) on the real API server, the ServiceMonitor and
// PodMonitor a user installs with the chart (metrics.serviceMonitor/podMonitor.enabled) or with the kustomize
// component deploy/components/prometheus-operator (overlay deploy/overlays/prometheus-operator) are accepted as they are; a malformed one is refused by name.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { ensureNamespace, kubectl, kubectlOk } from "../api/kubectl.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const CRDS = ["servicemonitors", "podmonitors"];
let helm = "";

/** Server-side dry run: the CRD's schema validates every object, nothing is persisted. */
function dryRunServer(manifests: string) {
  return kubectl(["apply", "--server-side", "--force-conflicts", "--dry-run=server", "--field-manager=ballast-tests", "-f", "-"], manifests);
}

describe("the prometheus-operator objects on a real API server with prometheus-operator's CRDs", () => {
  beforeAll(() => {
    helm = execFileSync(`${repoRoot}hack/helm/ensure-helm.sh`, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    const crdDir = execFileSync(`${repoRoot}hack/prometheus-operator/ensure-crds.sh`, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
    for (const crd of CRDS) kubectlOk(["apply", "--server-side", "--force-conflicts", "-f", join(crdDir, `monitoring.coreos.com_${crd}.yaml`)]);
    for (const crd of CRDS) kubectlOk(["wait", "--for=condition=Established", "--timeout=60s", `crd/${crd}.monitoring.coreos.com`]);
    for (const ns of ["ballast-system", "ballast-monitors"]) ensureNamespace(ns);
  }, 900_000);

  it("accepts the chart's ServiceMonitor and PodMonitor", () => {
    const rendered = execFileSync(
      helm,
      [
        ...["template", "ballast", `${repoRoot}charts/ballast`, "--namespace", "ballast-monitors"],
        ...["--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.podMonitor.enabled=true", "--set", "metrics.serviceMonitor.labels.release=kps"],
      ],
      { encoding: "utf8" },
    );
    const res = dryRunServer(rendered);
    expect(res.stderr.replace(/^Warning:.*\n?/gm, "")).toBe("");
    expect(res.stdout).toContain("servicemonitor.monitoring.coreos.com/ballast serverside-applied (server dry run)");
    expect(res.stdout).toContain("podmonitor.monitoring.coreos.com/ballast-serving serverside-applied (server dry run)");
  });

  it("accepts deploy/overlays/prometheus-operator: the kustomize base with the prometheus-operator component", () => {
    const res = dryRunServer(kubectlOk(["kustomize", join(repoRoot, "deploy/overlays/prometheus-operator")]));
    expect(res.stderr.replace(/^Warning:.*\n?/gm, "")).toBe("");
    expect(res.stdout).toContain("servicemonitor.monitoring.coreos.com/ballast-operator serverside-applied (server dry run)");
    expect(res.stdout).toContain("podmonitor.monitoring.coreos.com/ballast-serving serverside-applied (server dry run)");
    expect(res.stdout).toContain("deployment.apps/ballast-operator serverside-applied (server dry run)");
  });

  it("refuses a PodMonitor whose scrape interval is not a duration, naming the field (the schema is enforced)", () => {
    const bad = stringify({
      apiVersion: "monitoring.coreos.com/v1",
      kind: "PodMonitor",
      metadata: { name: "bad", namespace: "ballast-monitors" },
      spec: { selector: { matchLabels: { a: "b" } }, podMetricsEndpoints: [{ port: "monitoring", interval: "thirty seconds" }] },
    });
    const res = dryRunServer(bad);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toContain("spec.podMetricsEndpoints[0].interval");
  });
});
