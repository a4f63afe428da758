// The one place where failures become condition reasons and Event reasons. Reconcilers throw typed
// errors; the controller asks `classifyReconcileError` what the user should see and whether to retry.
import { ConditionReason, type ConditionReasonName } from "../api/index.js";
import { KubeApiError, type KubeObject } from "../kube/client.js";
import type { EventRecorder } from "../kube/events.js";

/** A failure with a CamelCase reason the user sees on the Ready condition and on a Warning Event. */
export class ReconcileError extends Error {
  constructor(
    readonly reason: ConditionReasonName,
    message: string,
  ) {
    super(message);
    this.name = "ReconcileError";
  }
}

/** The spec can never work as written (e.g. its PVC does not exist): Stalled=True until the user acts. */
export class StalledError extends ReconcileError {
  constructor(
    reason: ConditionReasonName,
    message: string,
    /** Look again after this long anyway: the missing thing may be created without the spec changing. */
    readonly recheckAfterMs = 60_000,
  ) {
    super(reason, message);
    this.name = "StalledError";
  }
}

export interface ErrorClassification {
  reason: ConditionReasonName;
  message: string;
  /** Stalled=True (kstatus Failed) rather than Reconciling=True (InProgress). */
  stalled: boolean;
  /** When to look again; undefined means the work queue's per-key exponential backoff. */
  requeueAfterMs?: number;
}

export function classifyReconcileError(err: unknown): ErrorClassification {
  if (err instanceof StalledError) return { reason: err.reason, message: err.message, stalled: true, requeueAfterMs: err.recheckAfterMs };
  if (err instanceof ReconcileError) return { reason: err.reason, message: err.message, stalled: false };
  if (err instanceof KubeApiError) {
    // Status is built from what the operator observed, not from the spec: an admission policy or a schema the
    // operator's status does not fit. Nothing the user changes in the spec helps; retried with backoff.
    if ((err.status === 422 || err.status === 400) && err.path.endsWith("/status"))
      return { reason: ConditionReason.ApplyFailed, message: `the API server rejected a status write: ${err.message}`, stalled: false };
    // 422 Invalid on apply: a pass-through field (affinity, env valueFrom) the API server rejects.
    if (err.status === 422 || err.status === 400)
      return {
        reason: ConditionReason.InvalidSpec,
        message: `the API server rejected an object built from the spec: ${err.message}`,
        stalled: true,
        requeueAfterMs: 300_000,
      };
    if (err.status === 403)
      return { reason: ConditionReason.Forbidden, message: `the operator's ServiceAccount lacks a permission: ${err.message}`, stalled: false };
    return { reason: ConditionReason.ApplyFailed, message: err.message, stalled: false };
  }
  return { reason: ConditionReason.ApplyFailed, message: err instanceof Error ? err.message : String(err), stalled: false };
}

/**
 * Records a failed reconcile as a Warning Event on the object it was for, so `kubectl describe` shows it (the
 * recorder folds repeats into one Event's series). `controller`, when given, opens the note: three controllers
 * reconcile the same object.
 */
export function recordReconcileFailure(recorder: EventRecorder, regarding: KubeObject, error: ErrorClassification, controller?: string): void {
  recorder.record(regarding, {
    type: "Warning",
    reason: error.reason,
    action: "Reconcile",
    note: controller ? `${controller} controller: ${error.message}` : error.message,
  });
}
