// The serving part of ModelDeployment status, as a pure function of the spec, the serving Deployment
// as last seen and the reconcile's outcome. kstatus reads Ready / Reconciling / Stalled and observedGeneration.
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import {
  ConditionReason,
  ConditionType,
  setCondition,
  type Condition,
  type ConditionReasonName,
  type ConditionTypeName,
  type ModelDeploymentStatus,
  type ResolvedModelDeployment,
} from "../../api/index.js";
import type { ErrorClassification } from "../reconcile-errors.js";
import { SERVER_CONTAINER, selectorString } from "./desired-state.js";

export interface DeploymentProgress {
  /** Ready to serve the desired number of pods at the desired version. */
  ready: boolean;
  /** Will not get there without a change (progress deadline exceeded). */
  stalled: boolean;
  reason: ConditionReasonName;
  message: string;
}

/** kstatus's reading of a Deployment, in words a ModelDeployment user understands. */
export function deploymentProgress(dep: V1Deployment | undefined): DeploymentProgress {
  if (!dep) return { ready: false, stalled: false, reason: ConditionReason.Progressing, message: "creating the serving Deployment" };
  const name = dep.metadata?.name ?? "";
  const desired = dep.spec?.replicas ?? 1;
  const st = dep.status ?? {};
  if ((st.observedGeneration ?? 0) < (dep.metadata?.generation ?? 0))
    return { ready: false, stalled: false, reason: ConditionReason.DeploymentProgressing, message: `Deployment ${name}: new generation not yet observed` };
  const progressing = st.conditions?.find((c) => c.type === "Progressing");
  if (progressing?.status === "False" && progressing.reason === "ProgressDeadlineExceeded")
    return {
      ready: false,
      stalled: true,
      reason: ConditionReason.DeploymentUnavailable,
      message: `Deployment ${name}: ${progressing.message ?? "progress deadline exceeded"}`,
    };
  const updated = st.updatedReplicas ?? 0;
  const ready = st.readyReplicas ?? 0;
  const available = st.availableReplicas ?? 0;
  const total = st.replicas ?? 0;
  if (updated < desired)
    return {
      ready: false,
      stalled: false,
      reason: ConditionReason.DeploymentProgressing,
      message: `rolling out: ${updated} of ${desired} serving pods updated`,
    };
  if (total > updated)
    return {
      ready: false,
      stalled: false,
      reason: ConditionReason.DeploymentProgressing,
      message: `rolling out: ${total - updated} old serving pods terminating`,
    };
  if (available < desired || ready < desired)
    return { ready: false, stalled: false, reason: ConditionReason.ServingNotReady, message: `${ready} of ${desired} serving pods ready` };
  if (desired === 0) return { ready: true, stalled: false, reason: ConditionReason.ScaledToZero, message: "scaled to zero serving pods" };
  return { ready: true, stalled: false, reason: ConditionReason.DeploymentAvailable, message: `${ready} of ${desired} serving pods ready` };
}

/** The line `ballast serve` prints before it exits on a start failure (src/cli/runtime-flags.ts). */
const SERVE_FAILURE_PREFIX = "ballast serve: ";

/**
 * Why the model server of a not-ready serving pod exited, from its termination message (the log's tail, by
 * FallbackToLogsOnError), e.g. the store's "access denied … check spec.model.s3.credentialsSecretRef".
 */
export function serverFailure(pods: readonly V1Pod[]): string | undefined {
  for (const pod of pods) {
    const server = pod.status?.containerStatuses?.find((c) => c.name === SERVER_CONTAINER);
    const exit = server?.state?.terminated ?? server?.lastState?.terminated;
    if (!server || server.ready || !exit || exit.exitCode === 0) continue;
    const said = (exit.message ?? "")
      .split("\n")
      .reverse()
      .find((l) => l.startsWith(SERVE_FAILURE_PREFIX))
      ?.slice(SERVE_FAILURE_PREFIX.length);
    return `serving pod ${pod.metadata?.name}: the model server exited with code ${exit.exitCode}${said ? `: ${said}` : ""}`;
  }
  return undefined;
}

export type ReconcileOutcome =
  { ok: true; deployment: V1Deployment | undefined; serverFailure?: string } | { ok: false; error: ErrorClassification; deployment: V1Deployment | undefined };

/** The next status: fields owned by the serving reconciler are recomputed, every other field is kept. */
export function servingStatus(md: ResolvedModelDeployment, outcome: ReconcileOutcome, now: Date): ModelDeploymentStatus {
  const prior = md.status ?? {};
  const generation = md.metadata.generation ?? 0;
  let conditions: Condition[] = prior.conditions ?? [];
  const set = (type: ConditionTypeName, status: "True" | "False" | "Unknown", reason: ConditionReasonName, message: string) => {
    conditions = setCondition(conditions, { type, status, reason, message, observedGeneration: generation }, now);
  };
  const rollout = deploymentProgress(outcome.deployment);
  // "0 of 1 pods ready" says nothing a user can act on when the server says why it cannot start.
  const progress: DeploymentProgress =
    outcome.ok && !rollout.ready && !rollout.stalled && outcome.serverFailure
      ? { ready: false, stalled: false, reason: ConditionReason.ServerFailing, message: outcome.serverFailure }
      : rollout;
  if (!outcome.ok) {
    const e = outcome.error;
    set(ConditionType.Ready, "False", e.reason, e.message);
    set(ConditionType.Stalled, e.stalled ? "True" : "False", e.reason, e.stalled ? e.message : "will retry");
    set(ConditionType.Reconciling, e.stalled ? "False" : "True", e.reason, e.stalled ? "waiting for the spec or the cluster to change" : e.message);
  } else if (progress.ready) {
    set(ConditionType.Ready, "True", ConditionReason.Reconciled, progress.message);
    set(ConditionType.Reconciling, "False", ConditionReason.Reconciled, "serving is up to date");
    set(ConditionType.Stalled, "False", ConditionReason.Reconciled, "serving is up to date");
  } else {
    set(ConditionType.Ready, "False", progress.reason, progress.message);
    set(ConditionType.Reconciling, progress.stalled ? "False" : "True", progress.reason, progress.message);
    set(ConditionType.Stalled, progress.stalled ? "True" : "False", progress.reason, progress.stalled ? progress.message : "making progress");
  }
  if (outcome.deployment) set(ConditionType.Serving, progress.ready ? "True" : "False", progress.reason, progress.message);
  const depStatus = outcome.deployment?.status;
  const next: ModelDeploymentStatus = {
    ...prior,
    observedGeneration: generation,
    conditions,
    replicas: depStatus?.replicas ?? 0,
    readyReplicas: depStatus?.readyReplicas ?? 0,
    selector: selectorString(md.metadata.name!),
  };
  if (md.spec.model.version) next.servingVersion = md.spec.model.version;
  return next;
}
