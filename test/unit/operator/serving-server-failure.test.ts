// When a serving pod's model server cannot start (e.g. the s3:// store refuses its keys), the ModelDeployment's
// Ready condition says why, in the server's own words, instead of "0 of 1 serving pods ready".
import type { V1ContainerStatus, V1Deployment, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { serverFailure, servingStatus } from "../../../src/operator/serving/status.js";
import { weatherModelDeployment as md } from "./fixtures.js";

const NOW = new Date("2026-12-05T12:00:00Z");
const DENIED =
  "GET s3://models/store/weather/: access denied by http://minio:9000 (SignatureDoesNotMatch: bad signature): check the credentials (spec.model.s3.credentialsSecretRef, or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and the bucket policy";
// What FallbackToLogsOnError puts in the termination message: the log's tail, pino lines, then `ballast serve: …`.
const TAIL = `{"level":50,"event":"start-failed","msg":"serve failed to start"}\nballast serve: ${DENIED}\n`;

function pod(name: string, server: Partial<V1ContainerStatus>): V1Pod {
  return {
    metadata: { name },
    status: {
      containerStatuses: [
        { name: "server", image: "b", imageID: "", ready: false, restartCount: 3, ...server },
        { name: "sidecar", image: "b", imageID: "", ready: false, restartCount: 0 },
      ],
    },
  };
}

const notReady: V1Deployment = {
  metadata: { name: "weather-serving", generation: 1 },
  spec: { replicas: 1, selector: {}, template: {} },
  status: { observedGeneration: 1, replicas: 1, updatedReplicas: 1, readyReplicas: 0, availableReplicas: 0 },
};

describe("a serving pod whose model server keeps exiting", () => {
  it("is named with the server's last words from its termination message", () => {
    const crashing = pod("weather-serving-abc", {
      lastState: { terminated: { exitCode: 2, message: TAIL } },
      state: { waiting: { reason: "CrashLoopBackOff" } },
    });
    expect(serverFailure([crashing])).toBe(`serving pod weather-serving-abc: the model server exited with code 2: ${DENIED}`);
  });

  it("is not blamed when the server is ready, exited cleanly, or never exited", () => {
    expect(serverFailure([pod("a", { ready: true, lastState: { terminated: { exitCode: 2, message: TAIL } } })])).toBeUndefined();
    expect(serverFailure([pod("b", { lastState: { terminated: { exitCode: 0 } } })])).toBeUndefined();
    expect(serverFailure([pod("c", { state: { waiting: { reason: "ContainerCreating" } } })])).toBeUndefined();
  });

  it("makes Ready=False with reason ServerFailing and the message, while the rollout is not stalled", () => {
    const s = servingStatus(md(), { ok: true, deployment: notReady, serverFailure: `serving pod p: the model server exited with code 2: ${DENIED}` }, NOW);
    const ready = s.conditions!.find((c) => c.type === "Ready")!;
    expect(ready).toMatchObject({ status: "False", reason: "ServerFailing" });
    expect(ready.message).toContain("spec.model.s3.credentialsSecretRef");
    // Without the why, the old words.
    const plain = servingStatus(md(), { ok: true, deployment: notReady }, NOW);
    expect(plain.conditions!.find((c) => c.type === "Ready")).toMatchObject({ status: "False", reason: "ServingNotReady" });
  });
});
