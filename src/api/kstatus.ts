// How Flux (kstatus) and the Argo CD health check in docs/gitops.md read a ModelDeployment's status.
// The Lua in docs/gitops.md must agree with these functions (test/unit/api/argocd-health.test.ts).
import type { Condition } from "./v1alpha1.js";

export type KstatusStatus = "InProgress" | "Failed" | "Current" | "Terminating";
export type ArgoHealthStatus = "Healthy" | "Progressing" | "Degraded" | "Suspended";

/** The parts of a ModelDeployment health checks read. */
export interface HealthInput {
  metadata?: { generation?: number; deletionTimestamp?: string | Date };
  spec?: { policy?: { paused?: boolean } };
  status?: { observedGeneration?: number; conditions?: readonly Condition[] };
}

function conditionText(c: Condition | undefined, fallback: string): string {
  if (c?.message) return c.message;
  return c?.reason ?? fallback;
}

/**
 * kstatus order: deletionTimestamp → Terminating; observedGeneration ≠ generation → InProgress;
 * Reconciling=True → InProgress; Stalled=True → Failed; Ready=True → Current; otherwise InProgress.
 */
export function computeKstatus(obj: HealthInput): { status: KstatusStatus; message: string } {
  if (obj.metadata?.deletionTimestamp)
    return { status: "Terminating", message: "Deleting: waiting for finalizers (foreground deletion of the serving objects, or another controller's)" };
  const generation = obj.metadata?.generation;
  if (obj.status?.observedGeneration === undefined || obj.status.observedGeneration !== generation) {
    return { status: "InProgress", message: `Waiting for the operator to observe generation ${generation ?? "?"}` };
  }
  const find = (type: string) => obj.status?.conditions?.find((c) => c.type === type);
  const reconciling = find("Reconciling");
  if (reconciling?.status === "True") return { status: "InProgress", message: conditionText(reconciling, "Reconciling") };
  const stalled = find("Stalled");
  if (stalled?.status === "True") return { status: "Failed", message: conditionText(stalled, "Stalled") };
  const ready = find("Ready");
  if (ready?.status === "True") return { status: "Current", message: conditionText(ready, "Ready") };
  return { status: "InProgress", message: conditionText(ready, "Waiting for the Ready condition") };
}

/** Argo CD's reading: kstatus, with a healthy but paused ModelDeployment shown as Suspended. */
export function argoHealth(obj: HealthInput): { status: ArgoHealthStatus; message: string } {
  const k = computeKstatus(obj);
  switch (k.status) {
    case "Failed":
      return { status: "Degraded", message: k.message };
    case "Current":
      return obj.spec?.policy?.paused === true
        ? { status: "Suspended", message: `Retraining and promotion paused (spec.policy.paused): ${k.message}` }
        : { status: "Healthy", message: k.message };
    default:
      return { status: "Progressing", message: k.message };
  }
}
