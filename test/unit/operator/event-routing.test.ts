// Which informer events wake the serving reconciler, and for which ModelDeployment.
import { describe, expect, it } from "vitest";
import { controllingOwnerKey, modelDeploymentChanged } from "../../../src/operator/manager.js";
import { weatherModelDeployment as md } from "./fixtures.js";

describe("event routing", () => {
  it("maps an owned object to its controlling ModelDeployment and ignores others", () => {
    const owned = {
      metadata: {
        namespace: "ml",
        ownerReferences: [{ apiVersion: "ballast.dev/v1alpha1", kind: "ModelDeployment", name: "weather", uid: "u1", controller: true }],
      },
    };
    expect(controllingOwnerKey(owned)).toBe("ml/weather");
    expect(
      controllingOwnerKey({
        metadata: { namespace: "ml", ownerReferences: [{ apiVersion: "apps/v1", kind: "ReplicaSet", name: "x", uid: "u", controller: true }] },
      }),
    ).toBeUndefined();
  });

  it("ignores our own status writes but not spec, annotation or deletion changes", () => {
    const a = md(2);
    expect(modelDeploymentChanged(a, { ...a, status: { observedGeneration: 2 } })).toBe(false);
    expect(modelDeploymentChanged(a, md(3))).toBe(true);
    expect(modelDeploymentChanged(a, { ...a, metadata: { ...a.metadata, deletionTimestamp: new Date() } })).toBe(true);
    expect(modelDeploymentChanged(a, { ...a, metadata: { ...a.metadata, annotations: { "ballast.dev/replicas-managed-by": "external" } } })).toBe(true);
  });
});
