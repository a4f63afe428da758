// One place turns failures into the reason a user sees on Ready and on the Warning Event, and decides retry or stall.
import { describe, expect, it } from "vitest";
import { KubeApiError } from "../../../src/kube/client.js";
import { classifyReconcileError, ReconcileError } from "../../../src/operator/reconcile-errors.js";

describe("one place maps errors to reasons", () => {
  it("stalls on specs the API server rejects, retries transient failures with backoff", () => {
    expect(classifyReconcileError(new KubeApiError(422, "Invalid", "spec.template.spec.affinity: Invalid value", "PATCH", "/x"))).toMatchObject({
      reason: "InvalidSpec",
      stalled: true,
    });
    // A status write is built from what the operator saw, not from the spec: retried, never blamed on the spec.
    expect(
      classifyReconcileError(new KubeApiError(422, "Invalid", "denied by policy", "PUT", "/apis/ballast.dev/v1alpha1/namespaces/a/modeldeployments/b/status")),
    ).toMatchObject({
      reason: "ApplyFailed",
      stalled: false,
      message: expect.stringMatching(/^the API server rejected a status write: PUT .*\/status: 422 Invalid: denied by policy$/),
    });
    expect(classifyReconcileError(new KubeApiError(403, "Forbidden", "cannot patch deployments", "PATCH", "/x"))).toMatchObject({
      reason: "Forbidden",
      stalled: false,
    });
    expect(classifyReconcileError(new KubeApiError(0, "Unreachable", "ECONNREFUSED", "GET", "/x"))).toMatchObject({ reason: "ApplyFailed", stalled: false });
    expect(classifyReconcileError(new ReconcileError("ModelNotFound", "no versions"))).toEqual({
      reason: "ModelNotFound",
      message: "no versions",
      stalled: false,
    });
  });
});
