// Given the sidecars' summaries at each scrape, the operator warns (one Event per pod, folded into a series while it
// lasts) when a serving pod's request log spool is full, and says so once when it has drained.
import { describe, expect, it } from "vitest";
import { SUMMARY_FORMAT, type SidecarSummary } from "../../../src/monitoring/summary.js";
import { logSpoolEvents } from "../../../src/operator/monitoring/log-spool.js";
import type { PodScrape } from "../../../src/operator/monitoring/health.js";

function scrape(pod: string, spool?: { bytes: number; full: 0 | 1 }): PodScrape {
  const summary: SidecarSummary = {
    format: SUMMARY_FORMAT,
    pod,
    model: "weather",
    version: "v1",
    task: "classification",
    generatedAt: "2026-12-06T03:00:00.000Z",
    totals: {
      requests: 10,
      failedRequests: 0,
      rejectedRequests: 0,
      rows: 10,
      feedback: 10,
      feedbackRejected: 0,
      ...(spool ? { logSpoolBytes: spool.bytes, logShipFailures: 7, logSpoolFull: spool.full } : {}),
    },
    windows: [],
  };
  return { pod, summary };
}

describe("request log spool Events", () => {
  it("warns for each pod whose spool is full, with the same note at every scrape so the repeats fold into one Event", () => {
    const first = logSpoolEvents([scrape("a", { bytes: 70_000, full: 1 }), scrape("b", { bytes: 10, full: 0 })], new Set());
    expect([...first.full]).toEqual(["a"]);
    expect(first.events).toHaveLength(1);
    expect(first.events[0]).toMatchObject({ type: "Warning", reason: "LogSpoolFull", action: "ShipRequestLog" });
    expect(first.events[0]!.note).toMatch(/^serving pod a: its request log spool is full \(spec\.model\.s3\.logSpoolBytes\).*feedback is refused with 503/);
    const again = logSpoolEvents([scrape("a", { bytes: 71_000, full: 1 }), scrape("b", { bytes: 10, full: 0 })], first.full);
    expect(again.events).toEqual(first.events);
  });

  it("says once that a pod's spool drained, and nothing for pods that never filled or stores that do not ship", () => {
    const drained = logSpoolEvents([scrape("a", { bytes: 4096, full: 0 }), scrape("b", { bytes: 0, full: 0 }), scrape("c")], new Set(["a"]));
    expect(drained.full.size).toBe(0);
    expect(drained.events).toEqual([
      {
        type: "Normal",
        reason: "LogSpoolDrained",
        action: "ShipRequestLog",
        note: "serving pod a: its request log spool drained to 4096 bytes; feedback is accepted again",
      },
    ]);
    expect(logSpoolEvents([scrape("a", { bytes: 4096, full: 0 })], drained.full).events).toEqual([]);
  });

  it("keeps a full pod full while it does not answer: a failed scrape proves nothing", () => {
    const next = logSpoolEvents([{ pod: "a", error: "GET http://10.0.0.1:9090/v1/monitoring/summary: no answer within 3000 ms" }], new Set(["a"]));
    expect([...next.full]).toEqual(["a"]);
    expect(next.events).toEqual([]);
  });
});
