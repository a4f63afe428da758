// Property tests over HTTP: arbitrary infer and feedback bodies sent to a real `ballast sidecar` in front of a real
// `ballast serve` (a model trained on weather data) get a 200 or a 4xx JSON `{"error": ...}` — never a 5xx, and
// neither process logs a failed request or stops.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { anyJson, nearMiss } from "../../support/json-mutation.js";
import { startModelServer, startSidecar, stopAll, type LocalProcess } from "./local-processes.js";
import { useTempDirs } from "./temp-dirs.js";
import { WEATHER_FEATURES, weatherFixture, type WeatherFixture } from "./weather-fixture.js";

const tempDir = useTempDirs("ballast-http-fuzz-");
let fx: WeatherFixture;
let server: LocalProcess;
let sidecar: LocalProcess;
let classes: string[];
/** Requests served through the sidecar: id → rows, for feedback that gets past "unknown id". */
const served = new Map<string, number>();

beforeAll(async () => {
  fx = await weatherFixture({ epochs: 2 });
  classes = fx.trained.metadata.classes!;
  server = await startModelServer(`file://${fx.storeDir}`, ["--max-batch-rows", "64"]);
  sidecar = await startSidecar(server.url, `file://${fx.storeDir}`, tempDir());
}, 120_000);

afterAll(async () => {
  await stopAll([sidecar, server]);
  fx?.cleanup();
});

/** Posts `text` as JSON and checks the answer is a 200 or a 4xx with a JSON `{"error": string}` body. */
async function post(path: string, text: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(sidecar.url + path, { method: "POST", headers: { "content-type": "application/json" }, body: text });
  const type = res.headers.get("content-type");
  const body: unknown = type === "application/json" ? await res.json() : await res.text();
  expect({ status: res.status < 500 ? "< 500" : res.status, type, body: res.status < 500 ? "…" : body }).toEqual({
    status: "< 500",
    type: "application/json",
    body: "…",
  });
  if (res.status >= 400) {
    expect(Object.keys(body as object)).toEqual(["error"]);
    expect(typeof (body as { error: unknown }).error).toBe("string");
  } else expect(res.status).toBe(200);
  return { status: res.status, body };
}

/** What a client might put on the wire: JSON of `value`, or any text at all. */
const wire = (value: fc.Arbitrary<unknown>): fc.Arbitrary<string> =>
  fc.oneof({ arbitrary: value.map((v) => JSON.stringify(v) ?? ""), weight: 9 }, { arbitrary: fc.string({ maxLength: 40 }), weight: 1 });

const weatherValue = fc.oneof(fc.double({ min: -50, max: 50, noNaN: true }), fc.constant(null));
const validInfer = fc.integer({ min: 1, max: 3 }).chain((n) =>
  fc.oneof(
    fc.array(fc.tuple(...WEATHER_FEATURES.map(() => weatherValue)), { minLength: n, maxLength: n }).map((rows) => ({
      inputs: WEATHER_FEATURES.map((name, f) => ({ name, shape: [n], datatype: "FP32", data: rows.map((r) => r[f]) })),
    })),
    fc.array(fc.record(Object.fromEntries(WEATHER_FEATURES.map((f) => [f, weatherValue]))), { minLength: n, maxLength: n }).map((instances) => ({ instances })),
  ),
);

describe("the sidecar and the model server under arbitrary bodies", () => {
  it("answer every infer body with a 200 or a 4xx JSON error", async () => {
    await fc.assert(
      fc.asyncProperty(wire(fc.oneof(anyJson, nearMiss(validInfer))), async (text) => {
        const { status, body } = await post("/v2/models/weather/infer", text);
        if (status === 200) {
          const { id, outputs } = body as { id: string; outputs: { name: string; shape: number[] }[] };
          served.set(id, outputs[0]!.shape[0]!);
        }
      }),
      { numRuns: 150 },
    );
    expect(served.size).toBeGreaterThan(0);
  });

  it("answer every feedback body with a 200 or a 4xx JSON error", async () => {
    const ids = [...served.keys()];
    const label = fc.oneof({ arbitrary: fc.constantFrom(...classes), weight: 4 }, { arbitrary: anyJson, weight: 1 });
    const validItem = fc
      .constantFrom(...ids)
      .chain((id) =>
        fc.oneof(
          fc.record({ id: fc.constant(id), row: fc.nat(served.get(id)! - 1), label }),
          fc.record({ id: fc.constant(id), labels: fc.array(label, { minLength: served.get(id)!, maxLength: served.get(id)! }) }),
        ),
      );
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        wire(fc.oneof(anyJson, nearMiss(validItem), nearMiss(fc.record({ feedback: fc.array(validItem, { minLength: 1, maxLength: 3 }) })))),
        async (text) => {
          if ((await post("/v1/feedback", text)).status === 200) accepted++;
        },
      ),
      { numRuns: 150 },
    );
    expect(accepted).toBeGreaterThan(0);
  });

  it("are still up and ready afterwards, and logged no failed request", async () => {
    expect((await fetch(`${sidecar.url}/v1/sidecar/ready`)).status).toBe(200);
    expect((await fetch(`${sidecar.url}/v2/health/ready`)).status).toBe(200);
    for (const p of [server, sidecar]) {
      expect(p.child.exitCode).toBeNull();
      expect(p.lines.filter((l) => l.includes('"event":"request-failed"'))).toEqual([]);
    }
  });
});
