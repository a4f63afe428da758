// Given the local cluster, the operator as its own ServiceAccount and a penguin sex classifier v1 trained on Adelie
// birds, with spec.promotion.shadow enabled (reverse shadow on by default) in manual mode: a person approves g1, a
// version trained elsewhere on the Gentoo colony. While g1 is observed, the previous version v1 runs in
// `<name>-shadow`, the serving sidecar (now g1) mirrors to it, and the monitoring controller reads the pairs as the
// reverse shadow's (status.shadow role previous). The paired rollback itself is covered by the unit tests (see the
// comment at the end of the test).
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Deployment } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { loadPenguins, PENGUIN_FEATURES, PENGUIN_LABEL, penguinsCsv, splitPenguins } from "../../../src/demo/penguins-data.js";
import { kubectl } from "../../support/cluster.js";
import { kubectlJson, trainInto } from "./operator-process.js";
import {
  penguinSuite,
  shadowPodsOn,
  deployPenguins,
  mirrorOf,
  operatorEvents,
  PENGUIN_WINDOW,
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

  it("while an approved version is observed, the previous version runs in the shadow and the promoted pod mirrors to it", async () => {
    await deployPenguins(suite.namespace, MD_NAME, {
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
    // Not covered here (see the r1 report): live labelled Adelie traffic to g1 met "unknown request id" on feedback for
    // the first request after a window closed, so the paired rollback is proven by the unit tests only.
  }, 600_000);
});
