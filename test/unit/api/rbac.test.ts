// The operator's ClusterRole grants what its code calls and nothing more (issue 10, item 13). Each verb here
// names its caller; adding a client call means adding its verb here, in deploy/base/role.yaml and (the
// helm-chart test keeps them equal) in the chart.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

const repoRoot = new URL("../../../", import.meta.url).pathname;

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/** resource → verb → the code that needs it. */
const used: Record<string, Record<string, string>> = {
  "ballast.dev/modeldeployments": {
    get: "loop reconciler reads the object fresh; status conflict retry (src/kube/status.ts)",
    list: "informer",
    watch: "informer",
    patch: "releases the finalizer older versions set (serving reconciler, on deletion)",
  },
  "ballast.dev/modeldeployments/status": { update: "updateStatusWithRetry (PUT with resourceVersion)" },
  "ballast.dev/modeldeployments/finalizers": { update: "blockOwnerDeletion under OwnerReferencesPermissionEnforcement" },
  ...Object.fromEntries(
    ["apps/deployments", "services", "configmaps", "networking.k8s.io/networkpolicies"].map((r) => [
      r,
      {
        get: "who controls an existing object of our name, on a cache miss (serving reconciler)",
        list: "informer",
        watch: "informer",
        create: "server-side apply that creates the object",
        patch: "server-side apply",
      },
    ]),
  ),
  "batch/jobs": { get: "a Job missing from the cache", list: "informer", watch: "informer", create: "a retraining attempt" },
  pods: { list: "monitoring informer; the loop lists a Job's pods", watch: "monitoring informer" },
  persistentvolumeclaims: { get: "the pvc:// claim check" },
  "events.k8s.io/events": { create: "EventRecorder", patch: "EventRecorder series" },
};

function granted(rules: Rule[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const rule of rules)
    for (const group of rule.apiGroups)
      for (const resource of rule.resources) {
        const key = group ? `${group}/${resource}` : resource;
        out[key] = [...(out[key] ?? []), ...rule.verbs].sort();
      }
  return out;
}

describe("deploy/base/role.yaml", () => {
  const role = parse(readFileSync(`${repoRoot}deploy/base/role.yaml`, "utf8")) as { rules: Rule[] };

  it("grants exactly the verbs the operator's code calls", () => {
    const expected = Object.fromEntries(Object.entries(used).map(([resource, verbs]) => [resource, Object.keys(verbs).sort()]));
    expect(granted(role.rules)).toEqual(expected);
  });

  it("has no wildcard and nothing on Secrets", () => {
    for (const rule of role.rules) {
      expect([...rule.apiGroups, ...rule.resources, ...rule.verbs]).not.toContain("*");
      expect(rule.resources).not.toContain("secrets");
    }
  });
});
