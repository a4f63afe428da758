// setCondition behaves like apimachinery's meta.SetStatusCondition, which kstatus and `kubectl wait` rely on.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ConditionReason,
  ConditionType,
  appendHistory,
  findCondition,
  isConditionReason,
  isConditionTrue,
  removeCondition,
  setCondition,
  type Condition,
  type HistoryEntry,
} from "../../../src/api/index.js";

const t0 = new Date("2026-01-01T00:00:00.123Z");
const t1 = new Date("2026-01-01T00:05:00Z");

describe("setCondition", () => {
  it("appends a new condition with the transition time at second precision", () => {
    const conditions = setCondition(undefined, { type: "Ready", status: "False", reason: "Progressing", message: "rolling out", observedGeneration: 1 }, t0);
    expect(conditions).toEqual([
      { type: "Ready", status: "False", reason: "Progressing", message: "rolling out", observedGeneration: 1, lastTransitionTime: "2026-01-01T00:00:00Z" },
    ]);
  });

  it("keeps lastTransitionTime when only reason, message or generation change", () => {
    const first = setCondition([], { type: "Ready", status: "False", reason: "Progressing", message: "0/1 ready", observedGeneration: 1 }, t0);
    const second = setCondition(first, { type: "Ready", status: "False", reason: "ServingNotReady", message: "0/2 ready", observedGeneration: 2 }, t1);
    expect(second[0]).toMatchObject({ reason: "ServingNotReady", message: "0/2 ready", observedGeneration: 2, lastTransitionTime: "2026-01-01T00:00:00Z" });
  });

  it("moves lastTransitionTime when the status flips, and leaves the input list untouched", () => {
    const first = setCondition([], { type: "Ready", status: "False", reason: "Progressing", message: "" }, t0);
    const snapshot = structuredClone(first);
    const second = setCondition(first, { type: "Ready", status: "True", reason: "Reconciled", message: "serving v1" }, t1);
    expect(second[0]!.lastTransitionTime).toBe("2026-01-01T00:05:00Z");
    expect(first).toEqual(snapshot);
  });

  it("keeps the order of other conditions when one is updated", () => {
    let conditions: Condition[] = [];
    for (const type of [ConditionType.Ready, ConditionType.Reconciling, ConditionType.Stalled]) {
      conditions = setCondition(conditions, { type, status: "False", reason: "Reconciled", message: "" }, t0);
    }
    conditions = setCondition(conditions, { type: ConditionType.Reconciling, status: "True", reason: "Progressing", message: "" }, t1);
    expect(conditions.map((c) => c.type)).toEqual(["Ready", "Reconciling", "Stalled"]);
    expect(isConditionTrue(conditions, "Reconciling")).toBe(true);
    expect(isConditionTrue(conditions, "Ready")).toBe(false);
    expect(findCondition(removeCondition(conditions, "Stalled"), "Stalled")).toBeUndefined();
  });

  it("for any sequence of updates: one entry per type, transition time = time of the last status change", () => {
    const update = fc.record({
      type: fc.constantFrom("Ready", "Reconciling", "Stalled", "Serving"),
      status: fc.constantFrom("True" as const, "False" as const, "Unknown" as const),
      reason: fc.constantFrom("Reconciled" as const, "Progressing" as const),
    });
    fc.assert(
      fc.property(fc.array(update, { maxLength: 40 }), (updates) => {
        let conditions: Condition[] = [];
        const lastChange = new Map<string, string>();
        updates.forEach((u, i) => {
          const now = new Date(Date.UTC(2026, 0, 1, 0, 0, i));
          const before = findCondition(conditions, u.type);
          if (before?.status !== u.status) lastChange.set(u.type, now.toISOString().replace(".000Z", "Z"));
          conditions = setCondition(conditions, { ...u, message: `step ${i}` }, now);
        });
        expect(new Set(conditions.map((c) => c.type)).size).toBe(conditions.length);
        for (const c of conditions) expect(c.lastTransitionTime).toBe(lastChange.get(c.type));
      }),
    );
  });
});

describe("condition reasons", () => {
  it("are one list: a permission error's Forbidden is in it, a reason someone else wrote into status is not", () => {
    expect(ConditionReason.Forbidden).toBe("Forbidden");
    for (const reason of Object.values(ConditionReason)) expect(isConditionReason(reason)).toBe(true);
    expect(isConditionReason("SomethingElse")).toBe(false);
  });
});

describe("appendHistory", () => {
  const entry = (i: number): HistoryEntry => ({ time: `2026-01-01T00:00:${String(i).padStart(2, "0")}Z`, event: "Promoted", version: `v${i}` });

  it("keeps the newest entries, oldest first, up to the bound", () => {
    let history: HistoryEntry[] = [];
    for (let i = 0; i < 25; i++) history = appendHistory(history, entry(i));
    expect(history).toHaveLength(20);
    expect(history[0]!.version).toBe("v5");
    expect(history.at(-1)!.version).toBe("v24");
    expect(appendHistory([entry(1), entry(2)], entry(3), 2).map((h) => h.version)).toEqual(["v2", "v3"]);
  });
});
