// What the operator writes after a retraining that was promoted: the story tests read it back.
import type { ModelDeploymentStatus } from "../../src/api/v1alpha1.js";

export const PROMOTED_STATUS: ModelDeploymentStatus = {
  servingVersion: "v2",
  previousVersion: "v1",
  loop: { phase: "Stable", attempt: 1, since: "2026-12-05T10:05:00Z", message: "promotion of v2 is final" },
  history: [
    { time: "2026-12-05T10:00:00Z", event: "Served", version: "v1" },
    { time: "2026-12-05T10:03:00Z", event: "Retrained", version: "v2", reason: "Retrained", message: "gate passed", metric: 0.938 },
    { time: "2026-12-05T10:03:01Z", event: "Promoted", version: "v2", previousVersion: "v1", metric: 0.938 },
  ],
  recentWindows: [
    {
      windowEnd: "2026-12-05T10:01:00Z",
      version: "v1",
      samples: 20,
      labelledSamples: 20,
      accuracy: 0.95,
      driftShare: 0,
      verdict: "Healthy",
      decidedBy: "labels",
    },
    {
      windowEnd: "2026-12-05T10:02:00Z",
      version: "v1",
      samples: 20,
      labelledSamples: 20,
      accuracy: 0.45,
      driftShare: 0.75,
      verdict: "Violated",
      decidedBy: "labels",
    },
    { windowEnd: "2026-12-05T10:04:00Z", version: "v2", samples: 20, labelledSamples: 0, verdict: "InsufficientData" },
  ],
  lastRetraining: {
    jobName: "penguins-retrain-1",
    phase: "Succeeded",
    gate: { passed: true, metric: "accuracy", recent: { rows: 16, candidate: 0.938, serving: 0.563 }, message: "accuracy 0.938 vs 0.563 on 16 rows" },
  },
};
