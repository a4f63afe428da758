// Given the local cluster, the operator as its own ServiceAccount and a penguin sex classifier v1 trained on Adelie
// birds, with spec.promotion.shadow enabled (reverse shadow on by default) in manual mode: a person approves g1, a
// version trained elsewhere on the Gentoo colony (nothing gates an approved version). While g1 is observed, the
// previous version v1 runs in `<name>-shadow`, the serving sidecar (now g1) mirrors to it, and the monitoring
// controller reads the pairs as the reverse shadow's (status.shadow role previous). Then live Adelie birds — held back
// from v1's training, with their real labels — come through the Service: on the same requests v1 is right far more
// often than g1 (a Gentoo model reads a light Adelie as female), McNemar's exact test says so, and the loop rolls back
// to v1 with reason PreviousVersionBetter and the paired numbers in status and Events.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Deployment } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { loadPenguins, PENGUIN_FEATURES, PENGUIN_LABEL, penguinsCsv, splitPenguins } from "../../../src/demo/penguins-data.js";
import { kubectl, waitFor } from "../../support/cluster.js";
import { kubectlJson, trainInto } from "./operator-process.js";
import {
  penguinSuite,
  shadowPodsOn,
  deployPenguins,
  mirrorOf,
  operatorEvents,
  PENGUIN_WINDOW,
  sendPenguins,
  soleServingPod,
  untilStatus,
  type PenguinModelDeployment,
} from "./penguin-loop.js";

const MD_NAME = "penguins";
const MIN_PAIRS = 40;

describe("ballast operator: the previous version as a reverse shadow while a promotion is observed", () => {
  const split = splitPenguins(loadPenguins(), 2 * PENGUIN_WINDOW);
  const suite = penguinSuite("op-reverse", split.training);
  const until = (what: string, test: (m: PenguinModelDeployment) => boolean, timeoutMs: number) => untilStatus(suite.namespace, MD_NAME, what, test, timeoutMs);
  const shadowDeployment = () => kubectlJson<V1Deployment>(["get", "deployment", `${MD_NAME}-shadow`, "-n", suite.namespace]);

  it("while an approved version is observed, the previous version runs in the shadow; significantly better on the same labelled requests, it is rolled back to", async () => {
    const serviceUrl = await deployPenguins(suite.namespace, MD_NAME, {
      mode: "manual",
      observationWindows: 5,
      shadow: { enabled: true, minPairs: MIN_PAIRS, minLabelledPairs: MIN_PAIRS, maxDuration: "10m" },
    });
    await until("v1 to be reported serving", (m) => m.status?.servingVersion === "v1", 120_000);

    // g1: the same features and label, trained on Gentoo birds only (heavier: an Adelie looks female to it).
    const gentooCsv = join(mkdtempSync(join(tmpdir(), "r1-gentoo-")), "gentoo.csv");
    writeFileSync(gentooCsv, penguinsCsv(split.gentoo));
    trainInto(suite.storeDir, gentooCsv, [
      ...["--model", "penguin-sex", "--version", "g1", "--label", PENGUIN_LABEL, "--features", PENGUIN_FEATURES.join(",")],
      ...["--epochs", "60", "--seed", "3", "--max-trials", "1"],
    ]);
    await kubectl(["patch", "md", MD_NAME, "-n", suite.namespace, "--type=merge", "-p", JSON.stringify({ spec: { promotion: { approvedVersion: "g1" } } })]);

    // Promoted; while it is observed the shadow Deployment runs v1, and the serving pods (now g1) mirror to it.
    const observing = await until("g1 observed", (m) => m.status?.loop?.phase === "Observing" && m.status.servingVersion === "g1", 240_000);
    expect(observing.status!.observation).toMatchObject({ version: "g1", previousVersion: "v1", reverseShadow: "Running" });
    const dep = await shadowDeployment();
    expect(dep.spec!.template.spec!.containers.find((c) => c.name === "server")!.args).toEqual(expect.arrayContaining(["--version", "v1"]));
    await until(
      "the serving pods to mirror to the reverse shadow",
      (m) => /1 of 1 serving pods mirror to 1 shadow pod\b/.test(m.status?.loop?.message ?? ""),
      180_000,
    );
    const [shadowPod] = await shadowPodsOn(suite.namespace, MD_NAME, "v1");
    expect(await mirrorOf(await soleServingPod(suite.namespace, MD_NAME))).toMatchObject({
      version: "v1",
      targets: [`http://${shadowPod!.status!.podIP}:8080`],
    });

    // The monitoring controller reads the serving pod's pairs as the reverse shadow's: the promoted version is the one under test.
    const paired = await until("status.shadow about the previous version", (m) => m.status?.shadow?.role === "previous", 60_000);
    expect(paired.status!.shadow).toMatchObject({ role: "previous", version: "v1", verdict: "Pending" });
    expect((await operatorEvents(suite.namespace, MD_NAME)).map((e) => e.reason)).toEqual(
      expect.arrayContaining(["CandidateApproved", "ReverseShadowStarted"]),
    );

    // Live labelled traffic the promoted version is worse on: Adelie birds v1 never trained on, each request labelled
    // right after its answer. Both models answer every mirrored request; the labels are forwarded to the shadow too.
    for (let round = 0, sent = 0; sent < MIN_PAIRS; round++) sent += (await sendPenguins(serviceUrl, split.familiar, `adelie-${round}`)).rows;
    const decided = await until("the reverse shadow's decision", (m) => m.status?.observation?.reverseShadow === "Decided", 180_000);
    const evidence = decided.status!.observation!.comparison!;
    expect(evidence, JSON.stringify(evidence)).toMatchObject({
      role: "previous",
      version: "v1",
      verdict: "Rejected",
      failedRule: "PreviousVersionBetter",
      metric: "accuracy",
      test: "McNemarExact",
    });
    console.error(
      `[reverse-shadow] ${evidence.labelledPairs} labelled pairs: v1 ${evidence.shadow} vs g1 ${evidence.serving}, ${evidence.test} p ${evidence.pValue}`,
    );
    expect(evidence.labelledPairs).toBeGreaterThanOrEqual(MIN_PAIRS);
    // v1 (the shadow) against g1 (serving) on the same labelled requests.
    expect(evidence.shadow!).toBeGreaterThan(evidence.serving! + 0.2);
    expect(evidence.pValue!).toBeLessThan(0.05);
    expect(decided.status!.observation!.message).toMatch(
      /v1 is significantly better than g1 on the same requests: accuracy .* on \d+ labelled pairs, McNemarExact p/,
    );

    // Rolled back: the serving Deployment pins v1 again, the sidecars report it, the loop counts a failed attempt.
    const rolledBack = await until("the rollback to v1", (m) => m.status?.servingVersion === "v1" && m.status.loop?.phase === "Stable", 240_000);
    expect(rolledBack.status!.targetVersion).toBe("v1");
    expect(rolledBack.status!.loop!.consecutiveFailures).toBe(1);
    expect(rolledBack.status!.history!.at(-1)).toMatchObject({ event: "RolledBack", version: "v1", previousVersion: "g1" });
    expect(rolledBack.status!.history!.at(-1)!.message).toMatch(/PreviousVersionBetter: v1 is significantly better than g1/);
    const serving = await kubectlJson<V1Deployment>(["get", "deployment", `${MD_NAME}-serving`, "-n", suite.namespace]);
    expect(serving.spec!.template.spec!.containers.find((c) => c.name === "server")!.args).toEqual(expect.arrayContaining(["--version", "v1"]));
    const events = await operatorEvents(suite.namespace, MD_NAME);
    const better = events.find((e) => e.reason === "PreviousVersionBetter");
    expect(better, JSON.stringify(events.map((e) => e.reason))).toMatchObject({ type: "Warning" });
    expect(better!.note).toMatch(/on \d+ labelled pairs, McNemarExact p [\d.e-]+; rolling back to v1/);
    expect(events.map((e) => e.reason)).toContain("RolledBack");
    // The decision is made: the shadow no longer runs.
    await waitFor("the shadow scaled to 0", async () => ((await shadowDeployment()).spec?.replicas === 0 ? true : undefined), 60_000);
  }, 600_000);
});
