// `ballast history` tells a model's story from status, Events and Jobs: these are the rules of that story.
import { describe, expect, it } from "vitest";
import type { ModelDeployment } from "../../../src/api/v1alpha1.js";
import { buildStory, formatStory, sparkline } from "../../../src/api/model-story.js";
import { PROMOTED_STATUS } from "../../support/model-story.js";

const md: ModelDeployment = {
  apiVersion: "ballast.dev/v1alpha1",
  kind: "ModelDeployment",
  metadata: { name: "penguins", namespace: "demo", uid: "u1" },
  spec: { model: { name: "penguins", storageUri: "pvc://models/penguins" } } as ModelDeployment["spec"],
  status: PROMOTED_STATUS,
};

describe("the story of a model", () => {
  const events = [
    {
      type: "Normal",
      reason: "RetrainingStarted",
      message: "accuracy 0.45 < 0.8 for 3 windows",
      series: { count: 1, lastObservedTime: "2026-12-05T10:02:30Z" },
    },
    // Said by status.history with its numbers already: not repeated.
    { type: "Normal", reason: "Promoted", message: "promoted v2", eventTime: "2026-12-05T10:03:01Z" },
    { type: "Warning", reason: "ScrapeFailed", message: "pod x: timeout", count: 4, lastTimestamp: "2026-12-05T10:01:30Z" },
  ];
  const jobs = [
    {
      metadata: { name: "penguins-retrain-1" },
      status: {
        startTime: "2026-12-05T10:02:31Z",
        completionTime: "2026-12-05T10:02:59Z",
        succeeded: 1,
        conditions: [{ type: "Complete", status: "True" }],
      },
    },
  ];
  const story = buildStory(md, events, jobs);

  it("puts history entries and Events on one timeline, oldest first, without saying a step twice", () => {
    expect(story.steps.map((s) => s.what)).toEqual(["Served", "ScrapeFailed", "RetrainingStarted", "Retrained", "Promoted"]);
    expect(story.steps.find((s) => s.what === "ScrapeFailed")).toMatchObject({ warning: true, count: 4 });
  });

  it("tells a rejected shadow once, from the history, as a warning", () => {
    const shadowed: ModelDeployment = {
      ...md,
      status: {
        history: [
          { time: "2026-12-05T11:00:00Z", event: "ShadowRejected", version: "r2-abc", reason: "SignificantlyWorse", message: "accuracy 0.7 vs serving 0.8" },
        ],
      },
    };
    const rejected = buildStory(
      shadowed,
      [{ type: "Warning", reason: "ShadowRejected", message: "shadow of r2-abc rejected", eventTime: "2026-12-05T11:00:00Z" }],
      [],
    );
    expect(rejected.steps).toEqual([expect.objectContaining({ what: "ShadowRejected", source: "history", warning: true })]);
  });

  it("lists each version once with the last thing that happened to it", () => {
    expect(story.versions).toEqual([
      { version: "v1", firstSeen: "2026-12-05T10:00:00Z", last: "Served" },
      { version: "v2", firstSeen: "2026-12-05T10:03:00Z", last: "Promoted" },
    ]);
  });

  it("gives each Job its state and duration", () => {
    expect(story.jobs).toEqual([
      { name: "penguins-retrain-1", state: "Complete", started: "2026-12-05T10:02:31Z", finished: "2026-12-05T10:02:59Z", durationSeconds: 28 },
    ]);
  });

  it("prints the gate numbers, the windows and a chart of accuracy and drift", () => {
    const text = formatStory(story);
    expect(text).toContain("ModelDeployment demo/penguins (model penguins): serving v2, previous v1");
    expect(text).toContain("accuracy 0.938 vs 0.563 on 16 rows");
    expect(text).toMatch(/v2 \(from v1\)\s+0\.938/);
    expect(text).toContain("penguins-retrain-1  Complete");
    expect(text).toContain("accuracy    █▄·");
    expect(text).toContain("drift share ▁▇·");
  });

  it("says when there is nothing yet instead of printing empty tables", () => {
    const empty = formatStory(buildStory({ ...md, status: {} }, [], []));
    expect(empty).toContain("(nothing yet)");
    expect(empty).toContain("(no window judged yet)");
    expect(empty).toContain("serving -");
  });
});

describe("the shadow and the label-free estimate in the story", () => {
  const shadow = {
    version: "v2",
    since: "2026-12-05T10:02:40Z",
    updateTime: "2026-12-05T10:02:55Z",
    mirrored: 20,
    dropped: 0,
    failed: 0,
    rows: 20,
    agreement: 0.55,
    labelledPairs: 20,
    metric: "accuracy",
    serving: 0.45,
    shadow: 0.95,
    improvement: 0.5,
    test: "McNemarExact" as const,
    pValue: 0.001953,
    servingErrorRate: 0,
    shadowErrorRate: 0,
    servingP99Ms: 10,
    shadowP99Ms: 25,
    verdict: "Passed" as const,
    message: "✓ not significantly worse",
  };
  const story = buildStory(
    {
      ...md,
      status: {
        ...PROMOTED_STATUS,
        lastRetraining: { ...PROMOTED_STATUS.lastRetraining!, shadow },
        recentWindows: [{ ...PROMOTED_STATUS.recentWindows![1]!, estimatedAccuracy: 0.96 }],
      },
    },
    [],
    [],
  );

  it("prints the shadow's paired numbers: pairs, agreement, both accuracies, p-value, error rates, p99 latencies", () => {
    const text = formatStory(story);
    expect(text).toContain("LAST SHADOW");
    expect(text).toContain("candidate v2: Passed; 20 pairs, 20 labelled, agreement 0.550 (mirrored 20, dropped 0, failed 0; since 2026-12-05 10:02:40)");
    expect(text).toContain("accuracy on the labelled pairs: candidate 0.950 vs serving 0.450 (improvement +0.500); McNemarExact p-value 0.0020");
    expect(text).toContain("error rate: candidate 0.000 vs serving 0.000; p99 latency: candidate 25.0 ms vs serving 10.0 ms");
  });

  it("shows each window's label-free estimate beside its accuracy", () => {
    const text = formatStory(story);
    expect(text).toMatch(/ACCURACY\s+ESTIMATED\s+DRIFT/);
    expect(text).toMatch(/0\.450\s+0\.960\s+0\.75/);
    expect(text).toContain("estimated   █");
  });

  it("marks a window re-judged on labels that came late, with the verdict it had when it closed", () => {
    const rejudged = {
      ...PROMOTED_STATUS.recentWindows![1]!,
      verdict: "Violated" as const,
      decidedBy: "labels" as const,
      rejudgedTime: "2026-12-05T10:09:00Z",
      firstJudged: { verdict: "Healthy" as const, decidedBy: "estimate" as const, labelledSamples: 0 },
    };
    const text = formatStory(buildStory({ ...md, status: { ...PROMOTED_STATUS, recentWindows: [rejudged] } }, [], []));
    expect(text).toMatch(/Violated \(was Healthy\)\s+labels \(late\)/);
    expect(text).toContain("(late): re-judged when labels came after the window closed");
  });

  it("shows the running shadow when none was decided yet", () => {
    expect(buildStory({ ...md, status: { shadow: { ...shadow, verdict: "Pending" } } }, [], []).shadow?.verdict).toBe("Pending");
  });
});

describe("sparkline", () => {
  it("maps 0..1 onto eight bars and clamps what is outside", () => {
    expect(sparkline([0, 0.5, 0.99, 1, -3, 7, undefined, Number.NaN])).toBe("▁▅██▁█··");
  });
});
