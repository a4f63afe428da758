// A new ModelDeployment's first status, written once for the three controllers. Serving, monitoring and the loop
// each own part of status; if each wrote its first part to the fresh object, that were three writes racing for one
// resourceVersion (409 Conflicts under load, each retry one more round trip). The serving controller writes first
// (the others wait for status.observedGeneration), so its first write carries the others' first parts too: what
// they would write themselves when nothing has happened yet. They then find their part current and write nothing
// until it changes.
import type { V1Deployment } from "@kubernetes/client-node";
import type { ModelDeploymentStatus, ResolvedModelDeployment } from "../api/index.js";
import { mergeOwned, rolloutObservation } from "./loop/reconciler.js";
import { stepLoop } from "./loop/state-machine.js";
import { monitoringStatus } from "./monitoring/health.js";

/** True while no controller has written status for this generation's object yet (the others wait for this write). */
export function isFirstStatus(md: ResolvedModelDeployment): boolean {
  return md.status?.observedGeneration === undefined;
}

/**
 * `serving` (the serving controller's first status of `md`) with the monitoring controller's first part (no pod read
 * yet: DriftDetected and Degraded Unknown) and the loop's first step folded in. A first loop step that has more to do
 * than record its state (an Event to record, a Job to create, a shadow to run) is left to the loop, which does
 * those with its own write.
 */
export function withOthersFirstStatus(
  md: ResolvedModelDeployment,
  serving: ModelDeploymentStatus,
  deployment: V1Deployment | undefined,
  now: Date,
): ModelDeploymentStatus {
  const monitored = monitoringStatus({ ...md, status: serving }, [], now);
  const step = stepLoop({ ...md, status: monitored }, { now, rollout: rolloutObservation(deployment) });
  if (step.events.length > 0 || step.createJob || step.shadow) return monitored;
  return mergeOwned(monitored, step.status);
}
