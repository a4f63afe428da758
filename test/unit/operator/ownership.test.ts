// Ballast reads results only from objects its ModelDeployment controls: a Job or Service of the same name
// made by someone else is never taken as ours.
import { describe, expect, it } from "vitest";
import { controlledBy, describeController } from "../../../src/operator/ownership.js";

const md = { metadata: { name: "penguins", uid: "md-uid" } };
const ref = (uid: string, controller = true, kind = "ModelDeployment", name = "penguins") => ({
  apiVersion: "ballast.dev/v1alpha1",
  kind,
  name,
  uid,
  controller,
});

describe("who controls an object", () => {
  it("is this ModelDeployment only when its uid is the controller reference", () => {
    expect(controlledBy({ metadata: { ownerReferences: [ref("md-uid")] } }, md)).toBe(true);
    // Same name, earlier incarnation.
    expect(controlledBy({ metadata: { ownerReferences: [ref("old-uid")] } }, md)).toBe(false);
    // Owned but not controlled.
    expect(controlledBy({ metadata: { ownerReferences: [ref("md-uid", false)] } }, md)).toBe(false);
    expect(controlledBy({ metadata: { name: "penguins-retrain-1" } }, md)).toBe(false);
  });

  it("says who controls it instead, for the NameConflict message", () => {
    expect(describeController({ metadata: { ownerReferences: [ref("x", true, "CronJob", "nightly")] } }, "penguins")).toBe("controlled by CronJob nightly");
    expect(describeController({ metadata: { ownerReferences: [ref("old-uid")] } }, "penguins")).toContain("earlier ModelDeployment penguins (uid old-uid)");
    expect(describeController({ metadata: { labels: { "ballast.dev/model-deployment": "penguins" } } }, "penguins")).toContain("controlled by nothing");
    expect(describeController({ metadata: {} }, "penguins")).toBe("not created by this ModelDeployment");
  });
});
