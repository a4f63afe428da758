// applyModelDeploymentDefaults gives the operator the same spec the API server would store.
import { describe, expect, it } from "vitest";
import { applyModelDeploymentDefaults, defaultAccuracyMetric, defaultDriftThreshold, type ModelDeploymentSpec } from "../../../src/api/index.js";

const minimal: ModelDeploymentSpec = {
  model: { name: "weather", storageUri: "pvc://models/store" },
  monitoring: { task: "classification", labelField: "weather", features: [{ name: "wind", type: "numeric" }] },
};

describe("applyModelDeploymentDefaults", () => {
  it("fills every section a user left out with the schema defaults", () => {
    const spec = applyModelDeploymentDefaults(minimal);
    expect(spec.serving).toEqual({ replicas: 1, port: 8080 });
    expect(spec.model.format).toBe("tfjs-layers");
    expect(spec.monitoring.window).toEqual({ size: 1000 });
    expect(spec.monitoring.drift).toEqual({ method: "auto", thresholdMode: "calibrated", correction: "none", multivariate: false });
    expect(spec.monitoring.scrapeInterval).toBe("30s");
    expect(spec.policy).toEqual({
      paused: false,
      maxDriftShare: 0.5,
      predictionDrift: false,
      minStability: 0.8,
      minRobustness: 0.99,
      consecutiveWindows: 3,
      minSamples: 100,
      cooldown: "1h",
      maxRetrainings: { count: 3, period: "24h" },
      triggerOn: "auto",
      minLabelledSamples: 50,
    });
    expect(spec.retraining.hyperparameters).toEqual({ epochs: 30, batchSize: 64, learningRate: 0.01, earlyStoppingPatience: 5, l2: 0.0001 });
    expect(spec.retraining.data).toEqual({ includeFeedback: true, holdoutFraction: 0.2 });
    expect(spec.retraining.search).toEqual({ maxTrials: 4, parallelism: 1 });
    expect(spec.promotion).toEqual({
      mode: "auto",
      minImprovement: 0.01,
      rollbackOnRegression: true,
      observationWindows: 3,
      maxLiveRegression: 0.05,
      maxForgetting: 0.05,
      maxLatencyRatio: 1.5,
      rolloutDeadline: "10m",
      shadow: { enabled: false, sampleRate: 1, minPairs: 500, minLabelledPairs: 200, maxDuration: "1h", replicas: 1, confidence: 0.95, reverse: true },
    });
  });

  it("keeps what the user set, defaults inside list items, and does not modify its input", () => {
    const input: ModelDeploymentSpec = {
      ...minimal,
      serving: { replicas: 0 },
      monitoring: { ...minimal.monitoring, window: { duration: "5m" } },
      retraining: { tolerations: [{ key: "nvidia.com/gpu", effect: "NoSchedule" }], resources: { limits: { "nvidia.com/gpu": 1 } } },
    };
    const before = structuredClone(input);
    const spec = applyModelDeploymentDefaults(input);
    expect(spec.serving.replicas).toBe(0);
    expect(spec.monitoring.window).toEqual({ duration: "5m" });
    expect(spec.retraining.tolerations).toEqual([{ key: "nvidia.com/gpu", effect: "NoSchedule", operator: "Equal" }]);
    expect(input).toEqual(before);
  });

  it("picks method-dependent defaults left open by the schema", () => {
    expect(defaultDriftThreshold("ks")).toBe(0.05);
    expect(defaultDriftThreshold("chisquare")).toBe(0.05);
    expect(defaultDriftThreshold("psi")).toBe(0.1);
    expect(defaultDriftThreshold("wasserstein")).toBe(0.1);
    expect(defaultAccuracyMetric("classification")).toBe("accuracy");
    expect(defaultAccuracyMetric("regression")).toBe("rmse");
  });
});
