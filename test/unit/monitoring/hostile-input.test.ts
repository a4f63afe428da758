// A client sends huge categorical values, or something that is not a sidecar answers on a pod's IP: profiles and
// summaries stay small, and a malformed summary is refused with the field that is wrong.
import { describe, expect, it } from "vitest";
import { boundCategory, CategoricalProfile, compare, DatasetProfile, MAX_CATEGORY_LENGTH, type FeatureSchema } from "../../../src/monitoring/index.js";
import {
  classificationCounts,
  labelledMetrics,
  PREDICTION_COLUMN,
  SUMMARY_FORMAT,
  type SidecarSummary,
  type WindowSummary,
} from "../../../src/monitoring/summary.js";
import { parseSidecarSummary, summaryConflict, SummaryFormatError } from "../../../src/monitoring/summary-schema.js";

const schema: FeatureSchema[] = [
  { name: "color", type: "categorical" },
  { name: "size", type: "numeric" },
];
const calm = Array.from({ length: 60 }, (_, i) => ({ color: ["red", "green", "blue"][i % 3], size: i % 10 }));
/** `n` distinct values of `bytes` characters each: what one client can send, one request at a time. */
const huge = (n: number, bytes: number) => Array.from({ length: n }, (_, i) => `${String(i).padStart(6, "0")}${"x".repeat(bytes - 6)}`);

function window(rows: Record<string, unknown>[], start = "2026-11-26T12:00:00.000Z"): WindowSummary {
  const features = DatasetProfile.fromRows(schema, rows);
  const predictions = DatasetProfile.fromRows(
    [{ name: PREDICTION_COLUMN, type: "categorical" }],
    rows.map(() => ({ prediction: "yes" })),
  );
  const labelled = classificationCounts(
    rows.map(() => "yes"),
    rows.map(() => "yes"),
  );
  return {
    start,
    end: "2026-11-26T12:01:00.000Z",
    closed: true,
    requests: rows.length,
    failedRequests: 0,
    rejectedRequests: 0,
    rows: rows.length,
    features: features.toJSON(),
    predictions: predictions.toJSON(),
    labelled,
    metrics: labelledMetrics(labelled),
    drift: compare(DatasetProfile.fromRows(schema, calm), features),
  };
}

function summaryOf(windows: WindowSummary[], pod = "shop-serving-a"): SidecarSummary {
  return {
    format: SUMMARY_FORMAT,
    pod,
    model: "shop",
    version: "v1",
    task: "classification",
    generatedAt: "2026-11-26T12:01:00.000Z",
    totals: { requests: 60, failedRequests: 0, rejectedRequests: 0, rows: 60, feedback: 60, feedbackRejected: 0 },
    windows,
  };
}

describe("category values are bounded", () => {
  it("100 distinct 2 MB values make a profile of a few KiB, each value a distinct category of at most 128 characters", () => {
    const values = huge(100, 2 * 1024 * 1024);
    const profile = new CategoricalProfile();
    for (const v of values) profile.add(v);
    expect(profile.counts.size).toBe(100);
    for (const key of profile.counts.keys()) expect(key.length).toBeLessThanOrEqual(MAX_CATEGORY_LENGTH);
    expect(JSON.stringify(profile.toJSON()).length).toBeLessThan(20_000);
    // The same long value is the same category wherever it is seen (reference, replicas, restarts).
    const replica = new CategoricalProfile();
    replica.add(values[7]);
    expect(profile.merge(replica).counts.get(boundCategory(values[7]!))).toBe(2);
    expect(boundCategory(values[7]!)).toMatch(/^000007x+…[0-9a-f]{16}$/);
  });

  it("keeps short values as they are and never splits a surrogate pair", () => {
    expect(boundCategory("rain")).toBe("rain");
    expect(boundCategory("x".repeat(MAX_CATEGORY_LENGTH))).toBe("x".repeat(MAX_CATEGORY_LENGTH));
    const emoji = "😀".repeat(100);
    const cut = boundCategory(emoji);
    expect(cut.length).toBeLessThanOrEqual(MAX_CATEGORY_LENGTH);
    // encodeURIComponent throws on a lone surrogate.
    expect(() => encodeURIComponent(cut)).not.toThrow();
  });

  it("bounds values in profiles written before the bound (a reference profile in metadata.json), merging their counts", () => {
    const long = "y".repeat(5000);
    const legacy = { type: "categorical", count: 3, missing: 0, invalid: 0, maxCategories: 100, counts: { [long]: 2, rain: 1 }, other: 0 };
    const back = CategoricalProfile.fromJSON(legacy as never, "profile features.color");
    expect(Object.fromEntries(back.counts)).toEqual({ [boundCategory(long)]: 2, rain: 1 });
    // A live value and the old reference's agree, so the long value is not an unseen category.
    const live = new CategoricalProfile();
    live.add(long);
    expect([...live.counts.keys()]).toEqual([boundCategory(long)]);
  });
});

describe("parseSidecarSummary", () => {
  const good = () => JSON.parse(JSON.stringify(summaryOf([window(calm)]))) as SidecarSummary & Record<string, unknown>;

  it("accepts what a sidecar writes", () => {
    expect(parseSidecarSummary(good()).windows).toHaveLength(1);
  });

  it("refuses a malformed summary with the first bad field", () => {
    const cases: [string, (s: ReturnType<typeof good>) => unknown, RegExp][] = [
      ["not an object", () => [1, 2], /not a JSON object/],
      ["another format", (s) => ({ ...s, format: "x" }), /format is "x", expected ballast.dev\/sidecar-summary\/v1/],
      ["negative rows", (s) => ((s.windows[0]!.rows = -1), s), /summary windows\.0\.rows: Expected integer to be greater or equal to 0/],
      ["a window end that is not a time", (s) => ((s.windows[0]!.end = "yesterday"), s), /summary windows\.0\.end: /],
      ["a version the CRD refuses", (s) => ({ ...s, version: "v".repeat(64) }), /summary version: /],
      ["labelled samples that are not a count", (s) => ((s.windows[0]!.metrics["samples"] = 1.5), s), /summary windows\.0\.metrics\.samples: Expected integer/],
      [
        "a drift report without features",
        (s) => (delete (s.windows[0]!.drift as unknown as Record<string, unknown>)["features"], s),
        /summary windows\.0\.drift/,
      ],
      [
        "a profile whose counts do not add up",
        (s) => (((s.windows[0]!.features.features["color"] as { count: number }).count = 7), s),
        /summary windows\.0\.features: .*count is 7/,
      ],
      [
        "a malformed confusion matrix",
        (s) => (((s.windows[0]!.labelled as { confusion: { cells: Record<string, number> } }).confusion.cells = { nosep: 1 }), s),
        /windows\.0\.labelled\.confusion: confusion matrix cell "nosep" is malformed/,
      ],
      [
        "more rows outside the reference's range than rows checked",
        (s) => ((s.windows[0]!.support = { rows: 5, outside: 6, expectedShare: 0.1, expectedShareSd: 0.1 }), s),
        /summary windows\.0\.support\.outside: 6 rows outside of 5 checked/,
      ],
      [
        "a negative expected share outside the reference's range",
        (s) => ((s.windows[0]!.support = { rows: 5, outside: 1, expectedShare: -0.1, expectedShareSd: 0.1 }), s),
        /summary windows\.0\.support\.expectedShare: Expected number to be greater or equal to 0/,
      ],
      [
        "an estimate whose matrix is not classes × classes",
        (s) => ((s.windows[0]!.estimate = { classes: ["a", "b"], rows: 1, expected: [[1, 0]] }), s),
        /summary windows\.0\.estimate\.expected: must be a 2×2 matrix/,
      ],
      [
        "an estimate with a negative expected count",
        (s) => (
          (s.windows[0]!.estimate = {
            classes: ["a", "b"],
            rows: 1,
            expected: [
              [1, 0],
              [-1, 0],
            ],
          }),
          s
        ),
        /summary windows\.0\.estimate\.expected\.1\.0: Expected number to be greater or equal to 0/,
      ],
      [
        "an estimate over too many classes",
        (s) => ((s.windows[0]!.estimate = { classes: Array.from({ length: 257 }, (_, i) => `c${i}`), rows: 0, expected: [] }), s),
        /summary windows\.0\.estimate\.classes: Expected array length to be less or equal to 256/,
      ],
      [
        "windows whose estimates name other classes",
        (s) => {
          const w = JSON.parse(JSON.stringify(s.windows[0])) as WindowSummary;
          s.windows[0]!.estimate = {
            classes: ["a", "b"],
            rows: 0,
            expected: [
              [0, 0],
              [0, 0],
            ],
          };
          w.estimate = {
            classes: ["a", "c"],
            rows: 0,
            expected: [
              [0, 0],
              [0, 0],
            ],
          };
          s.windows.push(w);
          return s;
        },
        /summary windows\.1\.estimate\.classes: differ from an earlier window's/,
      ],
      [
        "windows that disagree on a feature's type",
        (s) => {
          const w = JSON.parse(JSON.stringify(window(calm))) as WindowSummary;
          w.features = DatasetProfile.fromRows([{ name: "color", type: "numeric" }], [{ color: 1 }]).toJSON();
          s.windows.push(w);
          return s;
        },
        /summary windows\.1\.features: feature color is numeric here and categorical in an earlier window/,
      ],
    ];
    for (const [what, mutate, message] of cases) {
      expect(() => parseSidecarSummary(mutate(good())), what).toThrow(SummaryFormatError);
      expect(() => parseSidecarSummary(mutate(good())), what).toThrow(message);
    }
  });

  it("clips a schema error whose path repeats a huge key", () => {
    const s = good();
    s.windows[0]!.metrics = { ["k".repeat(100_000)]: "x" as unknown as number };
    let message = "";
    try {
      parseSidecarSummary(s);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^summary windows\.0\.metrics\.k+…: /);
    expect(message.length).toBeLessThan(400);
  });

  it("says why two replicas' summaries cannot merge", () => {
    const a = summaryOf([window(calm)]);
    expect(summaryConflict(a, summaryOf([window(calm)], "b"))).toBeUndefined();
    expect(summaryConflict(a, { ...a, version: "v2" })).toBe("serves shop/v2, not shop/v1");
    expect(summaryConflict(a, { ...a, task: "regression" })).toBe("is a regression summary, not classification");
    const retyped = window(calm);
    retyped.features = DatasetProfile.fromRows([{ name: "size", type: "categorical" }], [{ size: "big" }]).toJSON();
    expect(summaryConflict(a, summaryOf([retyped]))).toBe("feature size is categorical, not numeric");
    const withClasses = (classes: string[]) => {
      const w = window(calm);
      w.estimate = { classes, rows: 0, expected: classes.map(() => classes.map(() => 0)) };
      return summaryOf([w]);
    };
    expect(summaryConflict(withClasses(["a", "b"]), withClasses(["a", "c"]))).toBe("estimates over other classes");
    expect(summaryConflict(withClasses(["a", "b"]), withClasses(["a", "b"]))).toBeUndefined();
  });
});
