// Given the local cluster, the operator as its own ServiceAccount and a penguin sex classifier v1 trained on Adelie
// birds serving Adelie traffic, with spec.promotion.shadow enabled (reverse shadow on by default) in manual mode: a
// person approves g1, a version trained elsewhere on the Gentoo colony. Nothing Ballast measured says g1 is bad —
// it was never gated and no window of v1 was judged yet, so Observing's own rules have nothing to compare with. The
// previous version v1 keeps running in `<name>-shadow`, the serving sidecars (now g1) mirror the live Adelie
// requests and their feedback to it, and on the same labelled requests v1 is significantly better (McNemar's exact
// test): the loop rolls back to v1 with reason PreviousVersionBetter and the paired numbers in status, history and
// Events, and the shadow stops.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Deployment } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPenguins, PENGUIN_FEATURES, PENGUIN_LABEL, penguinsCsv, splitPenguins, type Penguin } from "../../../src/demo/penguins-data.js";
import { sendTrafficWithFeedback } from "../../../src/demo/traffic.js";
import { createTestNamespace, kubectl, waitFor } from "../../support/cluster.js";
import { installCrdAndRbac, kubectlJson, operatorKubeconfig, startOperator, trainInto, type OperatorProcess } from "./operator-process.js";
import {
  componentPods,
  deployPenguins,
  mirrorOf,
  operatorEvents,
  PENGUIN_WINDOW,
  preparePenguinStore,
  soleServingPod,
  untilStatus,
  type PenguinModelDeployment,
} from "./penguin-loop.js";

const MD_NAME = "penguins";
const MIN_PAIRS = 40;

describe("ballast operator: the previous version as a reverse shadow while a promotion is observed", () => {
  let ns: { name: string; remove: () => Promise<void> };
  let operator: OperatorProcess;
  let storeDir: string;
  const split = splitPenguins(loadPenguins(), 2 * PENGUIN_WINDOW);
  const until = (what: string, test: (m: PenguinModelDeployment) => boolean, timeoutMs: number) => untilStatus(ns.name, MD_NAME, what, test, timeoutMs);
  const podsOf = (component: "serving" | "shadow") => componentPods(ns.name, MD_NAME, component);
  const shadowDeployment = () => kubectlJson<V1Deployment>(["get", "deployment", `${MD_NAME}-shadow`, "-n", ns.name]);

  beforeAll(async () => {
    await installCrdAndRbac();
    ns = await createTestNamespace("op-reverse");
    storeDir = await preparePenguinStore(ns.name, split.training);
    const kubeconfig = operatorKubeconfig(mkdtempSync(join(tmpdir(), "r1-op-reverse-")));
    operator = await startOperator({ kubeconfig, args: ["--namespaces", ns.name] });
  });

  afterAll(async () => {
    if (!ns) return;
    await kubectl(["delete", "md", "--all", "-n", ns.name, "--wait=true", "--timeout=60s"]);
    if (operator) expect(await operator.stop()).toBe(0);
    await ns.remove();
  });

  it("an approved version worse on the same live requests is rolled back on the paired numbers; the shadow ran the previous version", async () => {
    const serviceUrl = await deployPenguins(ns.name, MD_NAME, {
      mode: "manual",
      observationWindows: 5,
      shadow: { enabled: true, minPairs: MIN_PAIRS, minLabelledPairs: MIN_PAIRS, maxDuration: "10m" },
    });
    await until("v1 to be reported serving", (m) => m.status?.servingVersion === "v1", 120_000);

    // g1: the same features and label, trained on Gentoo birds only (heavier: an Adelie looks female to it).
    const gentooCsv = join(mkdtempSync(join(tmpdir(), "r1-gentoo-")), "gentoo.csv");
    writeFileSync(gentooCsv, penguinsCsv(split.gentoo));
    trainInto(storeDir, gentooCsv, [
      ...["--model", "penguin-sex", "--version", "g1", "--label", PENGUIN_LABEL, "--features", PENGUIN_FEATURES.join(",")],
      ...["--epochs", "60", "--seed", "3", "--max-trials", "1"],
    ]);
    await kubectl(["patch", "md", MD_NAME, "-n", ns.name, "--type=merge", "-p", JSON.stringify({ spec: { promotion: { approvedVersion: "g1" } } })]);

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
    const [shadowPod] = await podsOf("shadow");
    expect(await mirrorOf(await soleServingPod(ns.name, MD_NAME))).toMatchObject({ version: "v1", targets: [`http://${shadowPod!.status!.podIP}:8080`] });

    // The Adelie population keeps coming, labelled: both versions answer every request.
    const adelie: readonly Penguin[] = split.familiar;
    // Labelled after each round's answers (a batch labeller): labels sent right after each answer met "unknown
    // request id" on the request after the first window closed (see the r1 report); this keeps the story to the shadow.
    for (let round = 0, sent = 0; sent < 2 * MIN_PAIRS; round++)
      sent += (
        await sendTrafficWithFeedback({
          serviceUrl,
          feedbackUrl: serviceUrl,
          model: "penguin-sex",
          days: adelie,
          rowsPerRequest: 5,
          idPrefix: `adelie-${round}`,
          features: PENGUIN_FEATURES,
          label: PENGUIN_LABEL,
        })
      ).rows;
    const decided = await until("the reverse shadow's decision", (m) => m.status?.loop?.phase !== "Observing", 180_000);
    const evidence = decided.status!.observation!;
    expect(evidence, JSON.stringify(evidence)).toMatchObject({
      version: "g1",
      previousVersion: "v1",
      reverseShadow: "Decided",
      comparison: { role: "previous", version: "v1", verdict: "Rejected", failedRule: "PreviousVersionBetter", metric: "accuracy", test: "McNemarExact" },
    });
    const numbers = evidence.comparison!;
    expect(numbers.labelledPairs).toBeGreaterThanOrEqual(MIN_PAIRS);
    expect(numbers.shadow!).toBeGreaterThan(numbers.serving!);
    expect(numbers.pValue!).toBeLessThan(0.05);
    expect(decided.status!.loop!.message).toMatch(/^PreviousVersionBetter: .*McNemarExact p .*rolling back to v1/);

    // Rolled back: v1 serves again, the history and Events carry the paired numbers, and the shadow is scaled to 0.
    const rolledBack = await until("v1 to serve again", (m) => m.status?.servingVersion === "v1" && m.status.loop?.phase === "Stable", 240_000);
    const entry = rolledBack.status!.history!.findLast((h) => h.event === "RolledBack")!;
    expect(entry).toMatchObject({ version: "v1", previousVersion: "g1" });
    expect(entry.message).toMatch(
      /PreviousVersionBetter: v1 is significantly better than g1 on the same requests: accuracy .* on \d+ labelled pairs, McNemarExact p/,
    );
    const events = await operatorEvents(ns.name, MD_NAME);
    expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(["CandidateApproved", "ReverseShadowStarted", "PreviousVersionBetter", "RolledBack"]));
    expect(events.find((e) => e.reason === "PreviousVersionBetter")!.note).toMatch(/McNemarExact p/);
    await waitFor("the shadow scaled to 0", async () => (await shadowDeployment()).spec!.replicas === 0, 60_000);
    await waitFor("the shadow pods gone", async () => (await podsOf("shadow")).length === 0, 120_000);
  }, 600_000);
});
