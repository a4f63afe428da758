// Given the local cluster, the operator as its own ServiceAccount and a penguin sex classifier trained on Adelie
// birds, with spec.promotion.shadow enabled: Gentoo traffic degrades the model, a retraining Job writes a candidate
// that passes the offline gate, and instead of being promoted the candidate runs as a shadow — its own Deployment
// and NetworkPolicy, never behind the user Service — while the serving sidecars mirror live requests and forward
// their feedback to it. The loop promotes it on the paired numbers (McNemar's exact test on the same labelled
// requests) and records them in status, history and Events. While the promotion is observed the previous version
// v1 takes the candidate's place in the shadow Deployment (the reverse shadow) and the new serving pod mirrors to it.
import type { V1Deployment, V1NetworkPolicy, V1Pod, V1Service } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { loadPenguins, splitPenguins, type Penguin } from "../../../src/demo/penguins-data.js";
import { kubectlJson } from "./operator-process.js";
import {
  penguinSuite,
  shadowPodsOn,
  componentPods,
  deployPenguins,
  mirrorOf,
  operatorEvents,
  PENGUIN_WINDOW,
  sendPenguins,
  soleServingPod,
  untilStatus,
  type PenguinModelDeployment,
} from "./penguin-loop.js";

const WINDOW = PENGUIN_WINDOW;
const MD_NAME = "penguins";
const MIN_PAIRS = 40;

describe("ballast operator: a candidate shadowed on mirrored live traffic before promotion", () => {
  let serviceUrl: string;
  const split = splitPenguins(loadPenguins(), 2 * WINDOW);
  const suite = penguinSuite("op-shadow", split.training);
  const get = () => kubectlJson<PenguinModelDeployment>(["get", "md", MD_NAME, "-n", suite.namespace]);
  const until = (what: string, test: (m: PenguinModelDeployment) => boolean, timeoutMs: number) => untilStatus(suite.namespace, MD_NAME, what, test, timeoutMs);
  const send = (rows: readonly Penguin[], idPrefix: string) => sendPenguins(serviceUrl, rows, idPrefix);
  const podsOf = (component: "serving" | "shadow") => componentPods(suite.namespace, MD_NAME, component);

  it("gate → shadow on mirrored traffic → promoted on the paired numbers; the shadow never behind the Service, then the previous version in it while observed", async () => {
    serviceUrl = await deployPenguins(suite.namespace, MD_NAME, {
      observationWindows: 3,
      minImprovement: 0.05,
      maxLatencyRatio: 3,
      shadow: { enabled: true, minPairs: MIN_PAIRS, minLabelledPairs: MIN_PAIRS, maxDuration: "10m" },
    });

    // Familiar birds first: a judged healthy window, so the Gentoo windows after it are each judged (hysteresis).
    await send(split.familiar.slice(0, WINDOW), "calm");
    await until("a healthy window", (m) => m.status?.lastMetrics?.verdict === "Healthy", 120_000);
    // Gentoo birds: violating windows → a Job → a candidate that passes the offline gate → Shadowing, not Promoting.
    await send(split.gentoo.slice(0, 3 * WINDOW), "gentoo");
    const shadowing = await until("the candidate to be shadowed", (m) => m.status?.loop?.phase === "Shadowing", 300_000);
    const candidate = shadowing.status!.candidateVersion!;
    expect(shadowing.status!.lastRetraining).toMatchObject({ phase: "Succeeded", candidateVersion: candidate, gate: { passed: true } });
    expect(shadowing.status!.targetVersion).toBeUndefined();

    // The shadow Deployment: owned by the ModelDeployment, pinned to the candidate, labelled out of the Service's selector.
    const dep = await kubectlJson<V1Deployment>(["get", "deployment", `${MD_NAME}-shadow`, "-n", suite.namespace]);
    expect(dep.metadata!.ownerReferences).toEqual([
      expect.objectContaining({ kind: "ModelDeployment", name: MD_NAME, uid: shadowing.metadata.uid, controller: true }),
    ]);
    expect(dep.spec!.template.metadata!.labels).toMatchObject({ "app.kubernetes.io/component": "shadow", "ballast.dev/model-deployment": MD_NAME });
    expect(dep.spec!.template.spec!.containers.find((c) => c.name === "server")!.args).toEqual(expect.arrayContaining(["--version", candidate]));
    const np = await kubectlJson<V1NetworkPolicy>(["get", "networkpolicy", `${MD_NAME}-shadow`, "-n", suite.namespace]);
    expect(np.spec!.podSelector!.matchLabels).toEqual({ "ballast.dev/model-deployment": MD_NAME, "app.kubernetes.io/component": "shadow" });
    // The API's `from` (the client model's `_from`).
    expect((np.spec!.ingress![0] as unknown as { from: unknown }).from).toEqual([
      { podSelector: { matchLabels: { "ballast.dev/model-deployment": MD_NAME, "app.kubernetes.io/component": "serving" } } },
    ]);

    // Every serving pod accepted the mirror configuration on its monitoring port, pointing at the ready shadow pod.
    await until("the serving pods to mirror to the shadow", (m) => /1 of 1 serving pods mirror to 1 shadow pod\b/.test(m.status?.loop?.message ?? ""), 180_000);
    const [shadowPod] = await podsOf("shadow");
    const [servingPod] = await podsOf("serving");
    expect(await mirrorOf(servingPod!)).toMatchObject({ version: candidate, targets: [`http://${shadowPod!.status!.podIP}:8080`] });
    // Never behind the user Service: the pods its selector picks are the serving pod alone.
    const svc = await kubectlJson<V1Service>(["get", "service", MD_NAME, "-n", suite.namespace]);
    const selector = Object.entries(svc.spec!.selector!)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    const behindService = await kubectlJson<{ items: V1Pod[] }>(["get", "pods", "-n", suite.namespace, "-l", selector]);
    expect(behindService.items.map((p) => p.metadata!.name)).toEqual([servingPod!.metadata!.name]);

    // Live Gentoo traffic with feedback through the Service: both models answer the same rows.
    const gentooLive = split.gentoo.slice(3 * WINDOW);
    expect(gentooLive.length).toBeGreaterThan(10);
    for (let round = 0, sent = 0; sent < 2 * MIN_PAIRS; round++) sent += (await send(gentooLive, `live-${round}`)).rows;
    const decided = await until("the shadow decision", (m) => m.status?.loop?.phase !== "Shadowing", 180_000);
    const result = decided.status!.lastRetraining!.shadow!;
    expect(result, JSON.stringify(result)).toMatchObject({ version: candidate, verdict: "Passed", metric: "accuracy", test: "McNemarExact" });
    expect(result.labelledPairs).toBeGreaterThanOrEqual(MIN_PAIRS);
    expect(result.rows).toBeGreaterThanOrEqual(MIN_PAIRS);
    expect(result.shadow!).toBeGreaterThan(result.serving! + 0.05);
    expect(result.pValue!).toBeLessThan(0.05);
    expect(decided.status!.history!.map((h) => h.event)).toEqual(expect.arrayContaining(["Retrained", "ShadowPassed"]));
    const events = await operatorEvents(suite.namespace, MD_NAME);
    expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(["ShadowStarted", "ShadowPassed"]));
    expect(events.find((e) => e.reason === "ShadowPassed")!.note).toMatch(/McNemarExact p/);

    // Promoted. While it is observed, the shadow Deployment runs the previous version and the new serving pod mirrors to it.
    const observing = await until("the candidate observed", (m) => m.status?.loop?.phase === "Observing" && m.status.servingVersion === candidate, 180_000);
    expect(observing.status!.observation).toMatchObject({ version: candidate, previousVersion: "v1", reverseShadow: "Running" });
    await until(
      "the serving pods to mirror to the previous version",
      (m) => m.status?.loop?.phase === "Observing" && /reverse shadow on v1: .*1 of 1 serving pods mirror to 1 shadow pod\b/.test(m.status.loop.message),
      180_000,
    );
    const reverseDep = await kubectlJson<V1Deployment>(["get", "deployment", `${MD_NAME}-shadow`, "-n", suite.namespace]);
    expect(reverseDep.spec!.template.spec!.containers.find((c) => c.name === "server")!.args).toEqual(expect.arrayContaining(["--version", "v1"]));
    const [previousPod] = await shadowPodsOn(suite.namespace, MD_NAME, "v1");
    expect(await mirrorOf(await soleServingPod(suite.namespace, MD_NAME))).toMatchObject({
      version: "v1",
      targets: [`http://${previousPod!.status!.podIP}:8080`],
    });

    expect((await get()).status!.servingVersion).toBe(candidate);
  }, 600_000);
});
