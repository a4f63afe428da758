// Property tests over what clients send: whatever the infer or feedback body, the parsers either accept it or
// refuse it with a Refusal that maps to a 4xx — never another exception (a 500), and never a poisoned window.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeColumns, FeatureValueError, type FeatureSpec } from "../../../src/runtime/features.js";
import { errorReply } from "../../../src/runtime/http-errors.js";
import { decodeInferRequest } from "../../../src/runtime/oip.js";
import { Refusal } from "../../../src/runtime/refusal.js";
import { RequestLog } from "../../../src/runtime/request-log.js";
import { TrafficMonitor } from "../../../src/runtime/traffic-monitor.js";
import { anyJson, edgeValue, nearMiss } from "../../support/json-mutation.js";
import { oneFeatureMetadata } from "./metadata-fixture.js";
import { useTempDirs } from "./temp-dirs.js";

const tempDir = useTempDirs("ballast-wire-fuzz-");
const features: FeatureSpec[] = [
  { name: "x", type: "numeric", mean: 0, std: 1 },
  { name: "c", type: "categorical", categories: ["a", "b"] },
];
const outputs = ["label", "probabilities"];
const MAX_ROWS = 50;

/** A message fit to repeat to a client: present, and not an echo of a huge input. */
function expectClientRefusal(err: unknown, kinds: readonly Refusal["kind"][]): void {
  if (!(err instanceof Refusal)) throw err; // fast-check reports the unexpected exception and the input
  expect(kinds).toContain(err.kind);
  expect(err.message.length).toBeGreaterThan(0);
  expect(err.message.length).toBeLessThan(2000);
  const { status } = errorReply(err);
  expect(status).toBeGreaterThanOrEqual(400);
  expect(status).toBeLessThan(500);
}

const goodNumber = fc.oneof(fc.double({ min: -1e6, max: 1e6, noNaN: true }), fc.constant(null));
const goodCategory = fc.constantFrom("a", "b", "unseen", "", null);
const rowsOf = <T>(n: number, item: fc.Arbitrary<T>): fc.Arbitrary<T[]> => fc.array(item, { minLength: n, maxLength: n });
/** Valid requests of 1–4 rows in each of the three forms. */
const validInfer = fc.integer({ min: 1, max: 4 }).chain((n) =>
  fc.oneof(
    fc.tuple(rowsOf(n, goodNumber), rowsOf(n, goodCategory)).map(([xs, cs]) => ({
      inputs: [
        { name: "x", shape: [n], datatype: "FP64", data: xs },
        { name: "c", shape: [n, 1], datatype: "BYTES", data: cs },
      ],
    })),
    rowsOf(
      n,
      fc.tuple(
        goodNumber.map((x) => (x === null ? null : String(x))),
        goodCategory,
      ),
    ).map((rows) => ({
      id: `row-${n}`,
      inputs: [{ name: "input", shape: [n, 2], datatype: "BYTES", data: rows }],
      outputs: [{ name: "label" }],
    })),
    rowsOf(n, fc.record({ x: goodNumber, c: goodCategory })).map((instances) => ({ instances, parameters: {} })),
  ),
);
const inferBody = fc.oneof(anyJson, nearMiss(validInfer));

describe("infer request parser under arbitrary bodies", () => {
  it("accepts with one value per row and feature, or refuses with a 4xx; what it accepts encodes or fails as a 400", () => {
    let accepted = 0;
    fc.assert(
      fc.property(inferBody, (body) => {
        let decoded;
        try {
          decoded = decodeInferRequest(body, features, outputs, MAX_ROWS);
        } catch (err) {
          expectClientRefusal(err, ["invalid", "too-large"]);
          return;
        }
        accepted++;
        expect(decoded.rows).toBeGreaterThanOrEqual(1);
        expect(decoded.rows).toBeLessThanOrEqual(MAX_ROWS);
        expect(decoded.columns.map((c) => c.length)).toEqual(features.map(() => decoded.rows));
        try {
          encodeColumns(features, decoded.columns, decoded.rows);
        } catch (err) {
          // The model server answers this as a 400 naming the input and row.
          if (!(err instanceof FeatureValueError)) throw err;
        }
      }),
      { numRuns: 3000 },
    );
    // The generator reaches past the first checks: some bodies are valid.
    expect(accepted).toBeGreaterThan(0);
  });

  it("refuses deeply nested data and a million-element shape without running out of stack or memory", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const bodies = [
      { inputs: [{ name: "x", shape: [1], datatype: "FP32", data: [deep] }] },
      { inputs: [{ name: "input", shape: [1, 2], datatype: "BYTES", data: [deep, "a"] }] },
      { inputs: [{ name: "x", shape: Array.from({ length: 1_000_000 }, () => 1), datatype: "FP32", data: [1] }] },
      { instances: [{ x: deep, c: "a" }] },
    ];
    for (const body of bodies) {
      try {
        const decoded = decodeInferRequest(body, features, outputs, MAX_ROWS);
        expect(() => encodeColumns(features, decoded.columns, decoded.rows)).toThrow(FeatureValueError);
      } catch (err) {
        expectClientRefusal(err, ["invalid"]);
      }
    }
  });
});

const T0 = Date.UTC(2026, 0, 1);

describe("feedback parser under arbitrary bodies", () => {
  it("accepts, or refuses the whole body with a 4xx; counts match what was stored and every window's metrics stay finite", async () => {
    const meta = oneFeatureMetadata({ task: "regression", target: { mean: 20, std: 5 } }, T0);
    const log = await RequestLog.open(tempDir(), { model: "m", version: "v1", task: "regression", label: "y", features: ["x"] });
    // More requests than the runs can label (a labelled row only answers "duplicate"); windows of 200 rows, so
    // late feedback lands in closed windows too.
    const monitor = new TrafficMonitor({ meta, windowRows: 200, windowMs: 0, windowsKept: 5, maxTracked: 2000, pod: "p", requestLog: log, now: () => T0 });
    const ids = Array.from({ length: 1000 }, (_, i) => `r${i}`);
    ids.forEach((id, i) => {
      const rows = 1 + (i % 3);
      monitor.enqueue({
        ts: T0,
        status: 200,
        requestBody: Buffer.from(JSON.stringify({ id, instances: Array.from({ length: rows }, () => ({ x: i })) })),
        responseBody: Buffer.from(
          JSON.stringify({ id, outputs: [{ name: "value", shape: [rows], datatype: "FP32", data: Array.from({ length: rows }, () => 20) }] }),
        ),
      });
    });
    monitor.drain();

    const goodLabel = fc.oneof(fc.double({ min: -480, max: 520, noNaN: true }), fc.constantFrom("20", " 21 "));
    const validItem = fc.integer({ min: 0, max: ids.length - 1 }).chain((i) => {
      const rows = 1 + (i % 3);
      return fc.oneof(
        fc.record({ id: fc.constant(ids[i]!), row: fc.nat(rows - 1), label: goodLabel }),
        fc.record({ id: fc.constant(ids[i]!), labels: rowsOf(rows, goodLabel) }),
      );
    });
    const body = fc.oneof(
      anyJson,
      nearMiss(validItem),
      nearMiss(fc.array(validItem, { minLength: 1, maxLength: 4 })),
      nearMiss(fc.record({ feedback: fc.array(validItem, { minLength: 1, maxLength: 4 }) })),
      fc.record({ id: fc.constantFrom(...ids), label: fc.oneof(edgeValue, fc.constantFrom("1e308", "-1e400", 1e308)) }),
    );

    let stored = 0;
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        try {
          const result = await monitor.applyFeedback(b);
          accepted++;
          stored += result.accepted;
          expect(result.accepted).toBeGreaterThan(0);
        } catch (err) {
          expectClientRefusal(err, ["invalid", "unknown-id", "duplicate"]);
        }
        expect(monitor.totals.feedback).toBe(stored);
        for (const w of monitor.summary().windows) for (const v of Object.values(w.metrics)) expect(Number.isFinite(v)).toBe(true);
      }),
      { numRuns: 400 },
    );
    expect(accepted).toBeGreaterThan(0);
    await log.close();
  });
});
