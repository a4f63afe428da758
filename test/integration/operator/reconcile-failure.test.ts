// A reconcile of the loop controller that fails for real — its status write refused by the API server, here by a
// cluster admission policy (ValidatingAdmissionPolicy) as a platform team's Kyverno or Gatekeeper rule would — is
// a Warning Event on the ModelDeployment that `kubectl describe` shows, repeats folded into one Event's series, and
// the loop carries on once the write is allowed again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import { applyYaml, installCrdAndRbac, kubectlJson, modelDeploymentYaml, startNamespacedOperator } from "./operator-process.js";

const STORE = "file:///nonexistent/ballast-reconcile-failure";

interface EventItem {
  type: string;
  reason: string;
  note: string;
  reportingController: string;
  regarding: { kind: string; name: string };
  series?: { count: number };
}

/** Refuses, in one namespace, a ModelDeployment status whose loop is Halted: 422 Invalid, as a schema violation would be. */
function noHaltedLoopPolicy(name: string, namespace: string): string {
  const policy = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicy",
    metadata: { name },
    spec: {
      failurePolicy: "Fail",
      matchConstraints: {
        resourceRules: [{ apiGroups: ["ballast.dev"], apiVersions: ["*"], operations: ["UPDATE"], resources: ["modeldeployments/status"] }],
      },
      validations: [
        {
          expression: "!(has(object.status) && has(object.status.loop) && has(object.status.loop.phase) && object.status.loop.phase == 'Halted')",
          message: "loops may not halt in this namespace (test policy)",
          reason: "Invalid",
        },
      ],
    },
  };
  const binding = {
    apiVersion: "admissionregistration.k8s.io/v1",
    kind: "ValidatingAdmissionPolicyBinding",
    metadata: { name },
    spec: {
      policyName: name,
      validationActions: ["Deny"],
      matchResources: { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } } },
    },
  };
  return `${stringify(policy)}---\n${stringify(binding)}`;
}

describe("ballast operator: a failed loop reconcile is a Warning Event", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let stop: (() => Promise<number | null>) | undefined;
  let policy = "";

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("op-fail");
    policy = `ballast-test-no-halted-${ns.name}`;
    await applyYaml(noHaltedLoopPolicy(policy, ns.name));
    // The API server loads a policy asynchronously: in force once it refuses a halted loop on a probe object.
    await applyYaml(modelDeploymentYaml(ns.name, "probe", STORE, { replicas: 0 }));
    const halted = JSON.stringify({ status: { loop: { phase: "Halted", attempt: 0, since: "2026-01-01T00:00:00Z", message: "probe" } } });
    await waitFor("the admission policy to be in force", async () => {
      const res = await kubectl(["patch", "md", "probe", "-n", ns.name, "--subresource=status", "--type=merge", "-p", halted, "--dry-run=server"]);
      return res.stderr.includes("loops may not halt in this namespace");
    });
    await kubectl(["delete", "md", "probe", "-n", ns.name, "--wait=true"]);
    ({ stop } = await startNamespacedOperator(ns));
  });

  afterAll(async () => {
    await kubectl(["delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", policy, "--ignore-not-found"]);
    expect(await stop?.()).toBe(0);
  });

  it("the loop's status write refused with 422 is recorded, aggregated, and the loop steps once it is allowed", async () => {
    // A paused policy: the loop's first step is Halted, which the policy refuses.
    const md = parse(modelDeploymentYaml(ns.name, "paused", STORE, { replicas: 0 })) as { spec: Record<string, unknown> };
    md.spec.policy = { paused: true };
    await applyYaml(stringify(md));

    const events = await waitFor(
      "a Warning Event from the loop controller, repeated into its series",
      async () => {
        const res = await kubectlJson<{ items: EventItem[] }>(["get", "events.events.k8s.io", "-n", ns.name, "--field-selector", "type=Warning"]);
        const loop = res.items.filter((e) => e.regarding.name === "paused" && e.note.startsWith("loop controller:"));
        return loop.length > 0 && loop.some((e) => (e.series?.count ?? 1) >= 2) ? loop : undefined;
      },
      60_000,
    );
    // One Event object however often the reconcile failed: the repeats are its series.
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: "Warning",
      reason: "ApplyFailed",
      reportingController: "ballast.dev/operator",
      regarding: { kind: "ModelDeployment" },
    });
    expect(events[0]!.note).toMatch(
      /^loop controller: the API server rejected a status write: PUT \S+\/modeldeployments\/paused\/status: 422 Invalid: .*loops may not halt in this namespace/,
    );
    // What a user runs.
    const described = await kubectl(["describe", "md", "paused", "-n", ns.name]);
    expect(described.stdout).toMatch(/Warning\s+ApplyFailed\s+.*loop controller: the API server rejected a status write/);
    // Serving was not refused: the first status (Ready, no loop) stands.
    const stuck = await kubectlJson<{ status?: { observedGeneration?: number; loop?: unknown; conditions?: { type: string; status: string }[] } }>([
      "get",
      "md",
      "paused",
      "-n",
      ns.name,
    ]);
    expect(stuck.status?.observedGeneration).toBe(1);
    expect(stuck.status?.loop).toBeUndefined();

    // The platform team lifts the rule: the loop's next retry (per-key backoff) writes Halted.
    await kubectl(["delete", "validatingadmissionpolicybinding", policy]);
    await waitFor(
      "the loop to write Halted once allowed",
      async () => (await kubectlJson<{ status?: { loop?: { phase?: string } } }>(["get", "md", "paused", "-n", ns.name])).status?.loop?.phase === "Halted",
      90_000,
    );
  });
});
