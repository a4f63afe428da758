// A new ModelDeployment gets one status write, not three: the serving controller's first write carries the
// monitoring controller's and the loop's first parts, and those two, looking later, find nothing to write.
import { isDeepStrictEqual } from "node:util";
import type { V1Deployment } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { ModelDeploymentSpec, ResolvedModelDeployment } from "../../../src/api/index.js";
import { isFirstStatus, withOthersFirstStatus } from "../../../src/operator/first-status.js";
import { owned, rolloutObservation } from "../../../src/operator/loop/reconciler.js";
import { stepLoop } from "../../../src/operator/loop/state-machine.js";
import { monitoringStatus } from "../../../src/operator/monitoring/health.js";
import { servingStatus } from "../../../src/operator/serving/status.js";
import { at, penguinsModelDeployment, T0 } from "./loop-fixtures.js";

const scaledToZero: V1Deployment = {
  metadata: { name: "penguins-serving", generation: 1 },
  spec: { replicas: 0, selector: {}, template: { spec: { containers: [{ name: "server", args: ["serve", "--version", "v1"] }] } } },
  status: { observedGeneration: 1 },
};

/** A ModelDeployment as created: no status at all. */
function fresh(spec: Partial<ModelDeploymentSpec> = {}): ResolvedModelDeployment {
  const md = penguinsModelDeployment(spec);
  return { ...md, status: undefined };
}

function firstWrite(md: ResolvedModelDeployment): ResolvedModelDeployment {
  expect(isFirstStatus(md)).toBe(true);
  const serving = servingStatus(md, { ok: true, deployment: scaledToZero }, T0);
  return { ...md, status: withOthersFirstStatus(md, serving, scaledToZero, T0) };
}

describe("a new ModelDeployment's first status", () => {
  it("carries every controller's first part, so the monitoring controller and the loop have nothing to write after it", () => {
    const md = firstWrite(fresh());
    expect(isFirstStatus(md)).toBe(false);
    const types = md.status!.conditions!.map((c) => `${c.type}=${c.status}`);
    expect(types).toEqual(expect.arrayContaining(["Ready=True", "DriftDetected=Unknown", "Degraded=Unknown"]));
    expect(md.status!.loop).toMatchObject({ phase: "Stable", attempt: 0 });

    // Seconds later each looks on its own schedule: the status it would write is the one already there.
    const monitoring = monitoringStatus(md, [], at(10));
    expect(isDeepStrictEqual(monitoring, md.status)).toBe(true);
    const step = stepLoop(md, { now: at(5), rollout: rolloutObservation(scaledToZero) });
    expect(step.events).toEqual([]);
    expect(step.createJob).toBeUndefined();
    expect(isDeepStrictEqual(owned(md.status!), step.status)).toBe(true);
  });

  it("leaves a first loop step that records an Event (a paused policy) to the loop, which writes and records it itself", () => {
    const md = firstWrite(fresh({ policy: { ...penguinsModelDeployment().spec.policy, paused: true } }));
    expect(md.status!.loop).toBeUndefined();
    expect(md.status!.conditions!.some((c) => c.type === "DriftDetected")).toBe(true);
    const step = stepLoop(md, { now: at(5), rollout: rolloutObservation(scaledToZero) });
    expect(step.status.loop?.phase).toBe("Halted");
    expect(step.events.map((e) => e.reason)).toEqual(["Paused"]);
  });
});
