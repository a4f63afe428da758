// Condition types, reasons and the pure helpers the operator uses to write metav1.Conditions.
import { MAX_HISTORY, type Condition, type ConditionStatus, type HistoryEntry } from "./v1alpha1.js";

/** kstatus conditions (Flux, `kubectl wait`) followed by Ballast's domain conditions. */
export const ConditionType = {
  Ready: "Ready",
  Reconciling: "Reconciling",
  Stalled: "Stalled",
  Serving: "Serving",
  DriftDetected: "DriftDetected",
  Degraded: "Degraded",
  Retraining: "Retraining",
  CandidateReady: "CandidateReady",
  LoopHalted: "LoopHalted",
} as const;
export type ConditionTypeName = (typeof ConditionType)[keyof typeof ConditionType];

/** Reasons the operator writes; each is also used as the Event reason for the same transition. */
export const ConditionReason = {
  // Ready / Reconciling / Stalled
  Reconciled: "Reconciled",
  Progressing: "Progressing",
  ServingNotReady: "ServingNotReady",
  /** A serving pod's model server keeps exiting (e.g. it cannot read the model store); the message says why. */
  ServerFailing: "ServerFailing",
  ModelNotFound: "ModelNotFound",
  VersionNotFound: "VersionNotFound",
  ClaimNotFound: "ClaimNotFound",
  /** An object with one of our derived names exists and another owner (or nobody) controls it. */
  NameConflict: "NameConflict",
  InvalidSpec: "InvalidSpec",
  ApplyFailed: "ApplyFailed",
  /** The operator's ServiceAccount lacks a permission (HTTP 403 from the API server). */
  Forbidden: "Forbidden",
  // Serving
  DeploymentAvailable: "DeploymentAvailable",
  DeploymentProgressing: "DeploymentProgressing",
  DeploymentUnavailable: "DeploymentUnavailable",
  ScaledToZero: "ScaledToZero",
  // DriftDetected / Degraded
  NoDrift: "NoDrift",
  DriftAboveThreshold: "DriftAboveThreshold",
  InsufficientData: "InsufficientData",
  Healthy: "Healthy",
  AccuracyBelowThreshold: "AccuracyBelowThreshold",
  ErrorAboveThreshold: "ErrorAboveThreshold",
  StabilityBelowThreshold: "StabilityBelowThreshold",
  RobustnessBelowThreshold: "RobustnessBelowThreshold",
  /** Labels that arrived after a window was judged changed its verdict (status.recentWindows[].rejudgedTime). */
  WindowRejudged: "WindowRejudged",
  // Retraining / promotion
  RetrainingStarted: "RetrainingStarted",
  RetrainingSucceeded: "RetrainingSucceeded",
  RetrainingFailed: "RetrainingFailed",
  CooldownActive: "CooldownActive",
  BudgetExhausted: "BudgetExhausted",
  Paused: "Paused",
  Idle: "Idle",
  CandidateRejected: "CandidateRejected",
  AwaitingApproval: "AwaitingApproval",
  Promoted: "Promoted",
  RolledBack: "RolledBack",
  // The loop (Events and history use the same words)
  CandidateApproved: "CandidateApproved",
  NoCandidate: "NoCandidate",
  Observing: "Observing",
  ObservationPassed: "ObservationPassed",
  LiveRegression: "LiveRegression",
  RolloutTimedOut: "RolloutTimedOut",
  TooManyFailures: "TooManyFailures",
  Resumed: "Resumed",
  // The shadow phase: the candidate on mirrored live traffic, judged pair by pair
  ShadowStarted: "ShadowStarted",
  ShadowPassed: "ShadowPassed",
  ShadowRejected: "ShadowRejected",
  ShadowExtended: "ShadowExtended",
  Inconclusive: "Inconclusive",
  ShadowStopped: "ShadowStopped",
  // The reverse shadow: the previous version on mirrored traffic while a promotion is observed
  ReverseShadowStarted: "ReverseShadowStarted",
  ReverseShadowPassed: "ReverseShadowPassed",
  PreviousVersionBetter: "PreviousVersionBetter",
  EstimatedRegression: "EstimatedRegression",
} as const;
export type ConditionReasonName = (typeof ConditionReason)[keyof typeof ConditionReason];

const REASONS = new Set<string>(Object.values(ConditionReason));
/** A reason read back from status (a string anyone with write access could have set) that is one of ours. */
export function isConditionReason(reason: string): reason is ConditionReasonName {
  return REASONS.has(reason);
}

/** What a caller supplies; lastTransitionTime is computed. */
export interface ConditionUpdate {
  type: ConditionTypeName;
  status: ConditionStatus;
  reason: ConditionReasonName;
  message: string;
  observedGeneration?: number;
}

/** A time as metav1.Time writes it: second precision (a fractional part would be rejected by strict clients). */
export function isoSeconds(now: Date | string): string {
  const date = typeof now === "string" ? new Date(now) : now;
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Returns a new conditions list with `update` set. lastTransitionTime moves only when status changes,
 * as metav1 (meta.SetStatusCondition) does; reason, message and observedGeneration are always updated.
 * Order is kept; a new type is appended.
 */
export function setCondition(conditions: readonly Condition[] | undefined, update: ConditionUpdate, now: Date | string): Condition[] {
  const list = conditions ?? [];
  const existing = list.find((c) => c.type === update.type);
  const next: Condition = {
    type: update.type,
    status: update.status,
    reason: update.reason,
    message: update.message,
    lastTransitionTime: existing && existing.status === update.status ? existing.lastTransitionTime : isoSeconds(now),
  };
  if (update.observedGeneration !== undefined) next.observedGeneration = update.observedGeneration;
  if (!existing) return [...list, next];
  return list.map((c) => (c.type === update.type ? next : c));
}

/** Returns the conditions list without `type`. */
export function removeCondition(conditions: readonly Condition[] | undefined, type: ConditionTypeName): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

export function findCondition(conditions: readonly Condition[] | undefined, type: ConditionTypeName): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: ConditionTypeName): boolean {
  return findCondition(conditions, type)?.status === "True";
}

/** Appends to status.history, dropping the oldest entries beyond `max`. */
export function appendHistory(history: readonly HistoryEntry[] | undefined, entry: HistoryEntry, max = MAX_HISTORY): HistoryEntry[] {
  const next = [...(history ?? []), entry];
  return next.length > max ? next.slice(next.length - max) : next;
}
