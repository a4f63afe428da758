// What the operator's informer caches keep of owned objects: all the reconcilers read, little else (memory).
import { describe, expect, it } from "vitest";
import { metadataOnly, slimDeployment } from "../../../src/operator/manager.js";
import { desiredServingObjects } from "../../../src/operator/serving/desired-state.js";
import { deploymentProgress } from "../../../src/operator/serving/status.js";
import { weatherModelDeployment as md } from "./fixtures.js";

describe("what the caches keep of owned objects", () => {
  it("keeps every Deployment field the reconciler reads, drops the rest of the pod template", () => {
    const { deployment, configMap } = desiredServingObjects(md(), { defaultImage: "img:1" });
    const full = {
      ...deployment,
      metadata: { ...deployment.metadata!, generation: 4, managedFields: [{ manager: "x" }] },
      status: { observedGeneration: 4, readyReplicas: 1 },
    };
    const slim = slimDeployment(full as never);
    expect(slim.metadata!.managedFields).toBeUndefined();
    expect(slim.metadata!.annotations).toEqual(deployment.metadata!.annotations);
    expect(slim.spec!.replicas).toBe(1);
    expect(slim.spec!.template.metadata!.annotations).toEqual(deployment.spec!.template.metadata!.annotations);
    expect(slim.spec!.template.spec!.containers.map((c) => c.args)).toEqual(deployment.spec!.template.spec!.containers.map((c) => c.args));
    expect(slim.spec!.template.spec!.volumes).toBeUndefined();
    expect(deploymentProgress(slim)).toEqual(deploymentProgress(full as never));
    const cm = metadataOnly(configMap as never) as typeof configMap;
    expect(cm.data).toBeUndefined();
    expect(cm.metadata!.ownerReferences).toEqual(configMap.metadata!.ownerReferences);
  });
});
