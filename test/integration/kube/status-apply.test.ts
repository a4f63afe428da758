// Status writes and server-side apply on the real API server: a stale copy meets a 409 and is retried on
// the latest without losing the other writer's fields; apply leaves fields others own alone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { stringify } from "yaml";
import { applyFinalizer, serverSideApply } from "../../../src/kube/apply.js";
import { KubeClient, resourcePath, type KubeObject } from "../../../src/kube/client.js";
import { updateStatusWithRetry } from "../../../src/kube/status.js";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";

const GROUP = "h3test.ballast.dev";
const WIDGETS = { group: GROUP, version: "v1", plural: "widgets", namespaced: true };
const CONFIG_MAPS = { group: "", version: "v1", plural: "configmaps", namespaced: true };
type Widget = KubeObject & { status?: Record<string, string> };

// A CRD of our own with a status subresource, so that status writes meet the real /status endpoint.
const WIDGET_CRD = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `widgets.${GROUP}` },
  spec: {
    group: GROUP,
    names: { kind: "Widget", plural: "widgets", singular: "widget" },
    scope: "Namespaced",
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: { type: "object", properties: { spec: { type: "object" }, status: { type: "object", additionalProperties: { type: "string" } } } },
        },
      },
    ],
  },
};

describe("status updates and server-side apply against a real API server", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let client: KubeClient;

  beforeAll(async () => {
    const applied = await kubectl(["apply", "-f", "-"], stringify(WIDGET_CRD));
    if (applied.code !== 0) throw new Error(applied.stderr);
    await waitFor("the Widget CRD to be established", async () => (await kubectl(["get", "--raw", `/apis/${GROUP}/v1/widgets`])).code === 0, 30_000);
    ns = await createTestNamespace("h3-status");
    client = await KubeClient.load(inject("kubeconfig"));
  });

  afterAll(async () => {
    await client?.close();
    await ns?.remove();
    await kubectl(["delete", "crd", `widgets.${GROUP}`, "--wait=false"]);
  });

  const create = (name: string) =>
    client.create<Widget>(resourcePath(WIDGETS, ns.name), { apiVersion: `${GROUP}/v1`, kind: "Widget", metadata: { name, namespace: ns.name }, spec: {} });

  it("retries a status write from a stale copy on the latest version, keeping what the other writer wrote", async () => {
    const stale = await create("contended");
    const path = resourcePath(WIDGETS, ns.name, "contended");
    await client.replace(`${path}/status`, { ...stale, status: { other: "theirs" } });
    let conflicts = 0;
    const written = await updateStatusWithRetry<Record<string, string>, Widget>(client, WIDGETS, stale, (latest) => ({ ...latest.status, ours: "ours" }), {
      onConflict: () => conflicts++,
    });
    expect(conflicts).toBe(1);
    expect(written?.status).toEqual({ other: "theirs", ours: "ours" });
    expect((await client.get<Widget>(path)).status).toEqual({ other: "theirs", ours: "ours" });
  });

  it("writes nothing when the status is already right, and answers undefined for an object that is gone", async () => {
    const w = await create("settled");
    const path = resourcePath(WIDGETS, ns.name, "settled");
    const first = await updateStatusWithRetry<Record<string, string>, Widget>(client, WIDGETS, w, () => ({ phase: "done" }));
    const second = await updateStatusWithRetry<Record<string, string>, Widget>(client, WIDGETS, first!, () => ({ phase: "done" }));
    expect(second?.metadata?.resourceVersion).toBe(first?.metadata?.resourceVersion);
    expect((await client.get<Widget>(path)).metadata?.resourceVersion).toBe(first?.metadata?.resourceVersion);
    await client.delete(path);
    await expect(updateStatusWithRetry<Record<string, string>, Widget>(client, WIDGETS, first!, () => ({ phase: "again" }))).resolves.toBeUndefined();
  });

  it("applies what it declares and leaves a user's own fields and finalizers alone", async () => {
    const cm = (data: Record<string, string>) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "applied", namespace: ns.name }, data });
    await serverSideApply(client, CONFIG_MAPS, cm({ ours: "1" }));
    await serverSideApply(client, CONFIG_MAPS, cm({ theirs: "user" }), { fieldManager: "a-user" });
    const reapplied = await serverSideApply<KubeObject & { data?: Record<string, string> }>(client, CONFIG_MAPS, cm({ ours: "2" }));
    expect(reapplied.data).toEqual({ ours: "2", theirs: "user" });

    const obj: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "applied", namespace: ns.name } };
    await applyFinalizer(client, CONFIG_MAPS, obj, "example.com/theirs", true, "a-user");
    expect((await applyFinalizer(client, CONFIG_MAPS, obj, "ballast.dev/ours", true)).metadata?.finalizers?.sort()).toEqual([
      "ballast.dev/ours",
      "example.com/theirs",
    ]);
    expect((await applyFinalizer(client, CONFIG_MAPS, obj, "ballast.dev/ours", false)).metadata?.finalizers).toEqual(["example.com/theirs"]);
    await applyFinalizer(client, CONFIG_MAPS, obj, "example.com/theirs", false, "a-user");

    await expect(serverSideApply(client, CONFIG_MAPS, { metadata: { name: "x" } })).rejects.toThrow(/needs apiVersion, kind and metadata.name/);
  });
});
