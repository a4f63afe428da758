// `ballast serve` as a user sees it: Open Inference Protocol v2 endpoints, every bad request answered, graceful drain.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackend } from "../../../src/runtime/backend.js";
import { encodeColumns } from "../../../src/runtime/features.js";
import { loadModel } from "../../../src/runtime/model-files.js";
import { predict } from "../../../src/runtime/predict.js";
import { openStore } from "../../../src/runtime/store.js";
import { postJson, startBallast, startModelServer, type LocalProcess } from "./local-processes.js";
import { WEATHER_FEATURES, inferBody, weatherFixture, type WeatherFixture } from "./weather-fixture.js";

let fx: WeatherFixture;
let server: LocalProcess;
const infer = (): string => `${server.url}/v2/models/weather/infer`;

beforeAll(async () => {
  fx = await weatherFixture({ epochs: 5 });
  server = await startModelServer(`file://${fx.storeDir}`, ["--max-body-bytes", "8192", "--max-batch-rows", "100"]);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  fx?.cleanup();
});

describe("ballast serve: Open Inference Protocol v2", () => {
  it("answers health, server and model metadata endpoints", async () => {
    expect(await (await fetch(`${server.url}/v2/health/live`)).json()).toEqual({ live: true });
    expect(await (await fetch(`${server.url}/v2/health/ready`)).json()).toEqual({ ready: true });
    const meta = (await (await fetch(`${server.url}/v2`)).json()) as { name: string; extensions: unknown[] };
    expect(meta.name).toBe("ballast");
    expect(meta.extensions).toEqual([]);
    for (const path of ["/v2/models/weather", "/v2/models/weather/versions/v1"]) {
      const model = (await (await fetch(server.url + path)).json()) as {
        name: string;
        versions: string[];
        inputs: { name: string; datatype: string }[];
        outputs: { name: string }[];
      };
      expect(model.name).toBe("weather");
      expect(model.versions).toEqual(["v1"]);
      expect(model.inputs.map((i) => i.name)).toEqual([...WEATHER_FEATURES]);
      expect(model.inputs.every((i) => i.datatype === "FP32")).toBe(true);
      expect(model.outputs.map((o) => o.name)).toEqual(["label", "probabilities"]);
    }
    for (const path of ["/v2/models/weather/ready", "/v2/models/weather/versions/v1/ready"]) {
      const res = await fetch(server.url + path);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ name: "weather", ready: true });
    }
  });

  it("predicts what the stored model predicts, for named tensors, one row tensor and instances", async () => {
    const rows = fx.seattleHoldout.slice(0, 6);
    const { tf } = await loadBackend();
    const store = openStore(fx.storeDir);
    const model = await loadModel(tf, store, "weather", "v1");
    const meta = fx.trained.metadata;
    const expected = predict(
      tf,
      model,
      meta,
      encodeColumns(
        meta.features,
        meta.features.map((f) => rows.map((r) => r[f.name as keyof typeof r])),
        rows.length,
      ),
      rows.length,
    );

    const named = await postJson(infer(), inferBody(rows, "req-1"));
    expect(named.status).toBe(200);
    const body = named.body as {
      model_name: string;
      model_version: string;
      id: string;
      outputs: { name: string; shape: number[]; datatype: string; data: unknown[] }[];
    };
    expect(body.model_name).toBe("weather");
    expect(body.model_version).toBe("v1");
    expect(body.id).toBe("req-1");
    expect(named.headers.get("inference-request-id")).toBe("req-1");
    const label = body.outputs.find((o) => o.name === "label")!;
    const probs = body.outputs.find((o) => o.name === "probabilities")!;
    expect(label).toMatchObject({ shape: [6], datatype: "BYTES", data: expected.labels });
    expect(probs.shape).toEqual([6, meta.classes!.length]);
    (probs.data as number[]).forEach((p, i) => expect(p).toBeCloseTo(expected.probabilities![i]!, 6));

    const rowTensor = await postJson(infer(), {
      inputs: [{ name: "input", shape: [6, 4], datatype: "FP64", data: rows.map((r) => WEATHER_FEATURES.map((f) => Number(r[f]))) }],
    });
    expect((rowTensor.body as typeof body).outputs[0]!.data).toEqual(expected.labels);

    const instances = await postJson(`${server.url}/v2/models/weather/versions/v1/infer`, {
      instances: rows.map((r) => Object.fromEntries(WEATHER_FEATURES.map((f) => [f, Number(r[f])]))),
      outputs: [{ name: "label" }],
    });
    const instBody = instances.body as typeof body;
    expect(instBody.outputs.map((o) => o.name)).toEqual(["label"]);
    expect(instBody.outputs[0]!.data).toEqual(expected.labels);
    expect(instBody.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("keeps the caller's inference-request-id header when the body has no id", async () => {
    const res = await postJson(infer(), inferBody(fx.seattleHoldout.slice(0, 1)), { "inference-request-id": "from-header" });
    expect((res.body as { id: string }).id).toBe("from-header");
    expect(res.headers.get("inference-request-id")).toBe("from-header");
  });

  it("answers with an id of its own when the body's id is not a valid request id (non-ASCII, over 128 characters)", async () => {
    // (16 KiB ids are tested through the sidecar; this server takes bodies of at most 8 KiB.)
    for (const id of ["天気-42", "x".repeat(6000)]) {
      const res = await postJson(infer(), inferBody(fx.seattleHoldout.slice(0, 1), id));
      expect(res.status).toBe(200);
      expect((res.body as { id: string }).id).toMatch(/^[0-9a-f-]{36}$/);
      expect(res.headers.get("inference-request-id")).toBe((res.body as { id: string }).id);
    }
  });

  it("accepts null as a missing value and fills it as training did", async () => {
    const res = await postJson(infer(), { instances: [{ precipitation: null, temp_max: 12, temp_min: null, wind: 3 }] });
    expect(res.status).toBe(200);
  });
});

const good = { name: "precipitation", shape: [1], datatype: "FP32", data: [0] };
const tensors = (overrides: Record<string, unknown>[]): object => ({
  inputs: [
    good,
    { name: "temp_max", shape: [1], datatype: "FP32", data: [10] },
    { name: "temp_min", shape: [1], datatype: "FP32", data: [5] },
    { name: "wind", shape: [1], datatype: "FP32", data: [3] },
  ].map((t, i) => ({ ...t, ...overrides[i] })),
});

interface BadCase {
  what: string;
  method?: string;
  path?: string;
  body?: unknown;
  headers?: Record<string, string>;
  status: number;
  error: string;
}

const badRequests: BadCase[] = [
  { what: "malformed JSON", body: "{inputs: [", status: 400, error: "malformed JSON" },
  { what: "empty body", body: "", status: 400, error: "request body is empty" },
  { what: "a JSON array", body: [1, 2], status: 400, error: "request body must be a JSON object" },
  { what: "neither inputs nor instances", body: { id: "x" }, status: 400, error: 'request needs "inputs"' },
  { what: "both inputs and instances", body: { ...tensors([]), instances: [] }, status: 400, error: 'either "inputs" or "instances"' },
  { what: "inputs not an array", body: { inputs: { name: "x" } }, status: 400, error: '"inputs" must be a non-empty array' },
  { what: "empty inputs", body: { inputs: [] }, status: 400, error: '"inputs" must be a non-empty array' },
  { what: "tensor without name", body: tensors([{ name: "" }]), status: 400, error: 'inputs[0]: "name" must be a non-empty string' },
  { what: "unknown datatype", body: tensors([{ datatype: "FLOAT" }]), status: 400, error: 'inputs[0]: "datatype" must be one of BOOL, UINT8' },
  { what: "negative shape", body: tensors([{ shape: [-1] }]), status: 400, error: "inputs[0].shape[0]: must be a non-negative integer" },
  { what: "data shorter than shape", body: tensors([{ shape: [2] }]), status: 400, error: 'shape [2] needs 2 values, "data" has 1' },
  { what: "an unknown feature tensor", body: tensors([{}, {}, {}, { name: "snow" }]), status: 400, error: 'inputs[3] "snow": unknown input' },
  { what: "a missing feature", body: { inputs: (tensors([]) as { inputs: unknown[] }).inputs.slice(0, 3) }, status: 400, error: "missing input(s): wind" },
  { what: "a feature given twice", body: tensors([{}, {}, {}, { name: "precipitation" }]), status: 400, error: "input given twice" },
  { what: "tensors with different row counts", body: tensors([{}, { shape: [2], data: [1, 2] }]), status: 400, error: "has 2 rows but earlier inputs have 1" },
  { what: "a string in an FP32 tensor", body: tensors([{ data: ["zero"] }]), status: 400, error: 'datatype FP32 needs finite numbers, got "zero"' },
  {
    what: "BYTES for a numeric feature",
    body: tensors([{ datatype: "BYTES", data: ["0"] }]),
    status: 400,
    error: "datatype BYTES does not fit numeric feature",
  },
  { what: "a fraction in an INT32 tensor", body: tensors([{ datatype: "INT32", data: [0.5] }]), status: 400, error: "datatype INT32 needs integers, got 0.5" },
  { what: "a negative UINT8", body: tensors([{ datatype: "UINT8", data: [-1] }]), status: 400, error: "UINT8 needs non-negative integers" },
  {
    what: "a row tensor of the wrong width",
    body: { inputs: [{ name: "input", shape: [1, 3], datatype: "FP32", data: [1, 2, 3] }] },
    status: 400,
    error: "must be [N, 4]",
  },
  {
    what: "an unknown single tensor",
    body: { inputs: [{ name: "features", shape: [1, 4], datatype: "FP32", data: [1, 2, 3, 4] }] },
    status: 400,
    error: 'unknown input "features"',
  },
  { what: "zero rows", body: { inputs: [{ name: "input", shape: [0, 4], datatype: "FP32", data: [] }] }, status: 400, error: "request has no rows" },
  {
    what: "an instance without a feature",
    body: { instances: [{ precipitation: 0, temp_max: 1, temp_min: 0 }] },
    status: 400,
    error: 'instances[0]: missing feature "wind"',
  },
  {
    what: "an instance with an extra feature",
    body: { instances: [{ precipitation: 0, temp_max: 1, temp_min: 0, wind: 1, snow: 2 }] },
    status: 400,
    error: 'instances[0]: unknown feature(s) "snow"',
  },
  { what: "an instance array of the wrong length", body: { instances: [[1, 2, 3]] }, status: 400, error: "instances[0]: 3 values, expected 4" },
  {
    what: "a non-numeric instance value",
    body: { instances: [{ precipitation: "lots", temp_max: 1, temp_min: 0, wind: 1 }] },
    status: 400,
    error: 'input "precipitation" row 0: "lots" is not a number',
  },
  { what: "an unknown output", body: { ...tensors([]), outputs: [{ name: "logits" }] }, status: 400, error: 'unknown output "logits"' },
  { what: "a numeric id", body: { ...tensors([]), id: 7 }, status: 400, error: '"id" must be a string' },
  { what: "an unknown model", path: "/v2/models/nope/infer", body: tensors([]), status: 404, error: 'unknown model "nope"' },
  { what: "a version that is not loaded", path: "/v2/models/weather/versions/v9/infer", body: tensors([]), status: 404, error: 'version "v9" is not loaded' },
  { what: "an unknown route", path: "/v1/models/weather:predict", body: tensors([]), status: 404, error: "no route POST /v1/models/weather:predict" },
  { what: "GET on infer", method: "GET", status: 405, error: "method GET not allowed" },
  { what: "POST on the liveness probe", path: "/v2/health/live", body: {}, status: 405, error: "use GET" },
  {
    what: "a body over --max-body-bytes",
    body: { ...tensors([]), parameters: { pad: "x".repeat(10_000) } },
    status: 413,
    error: "exceeds the limit of 8192 bytes",
  },
  {
    what: "more rows than --max-batch-rows",
    body: { inputs: [{ name: "input", shape: [101, 4], datatype: "FP32", data: new Array(404).fill(1) }] },
    status: 413,
    error: "101 rows; the limit is 100",
  },
  { what: "a CSV content type", body: "a,b\n1,2", headers: { "content-type": "text/csv" }, status: 415, error: 'content-type "text/csv" is not supported' },
];

describe("ballast serve: bad requests", () => {
  it("has a table of at least 20 bad requests", () => expect(badRequests.length).toBeGreaterThanOrEqual(20));

  it.each(badRequests)("answers $what with $status and a message naming the problem", async (c) => {
    const method = c.method ?? "POST";
    const res = await fetch(server.url + (c.path ?? "/v2/models/weather/infer"), {
      method,
      headers: { "content-type": "application/json", ...c.headers },
      ...(method === "GET" ? {} : { body: typeof c.body === "string" ? c.body : JSON.stringify(c.body) }),
    });
    expect(res.status).toBe(c.status);
    expect(res.headers.get("content-type")).toBe("application/json");
    const body = (await res.json()) as { error: string };
    expect(Object.keys(body)).toEqual(["error"]);
    expect(body.error).toContain(c.error);
  });

  it("answers 413 to a body declared over --max-body-bytes and closes the connection instead of reading the rest", async () => {
    const socket = net.connect(server.port, "127.0.0.1");
    let response = "";
    socket.on("data", (c) => (response += c.toString()));
    const closed = new Promise<boolean>((resolve) => {
      socket.once("close", () => resolve(true));
      setTimeout(() => resolve(false), 5000);
    });
    socket.write(`POST /v2/models/weather/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1048576\r\n\r\n{"inputs": [`);
    expect(await closed).toBe(true);
    socket.destroy();
    expect(response).toMatch(/^HTTP\/1.1 413 /);
    expect(response).toMatch(/\r\nconnection: close\r\n/i);
  });

  it("is still live and predicting after all of them", async () => {
    expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
    expect((await postJson(infer(), tensors([]))).status).toBe(200);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/ballast_serve_requests_total\{route="infer",code="400"\} \d+/);
    expect(metrics).toContain('ballast_model_info{model="weather",version="v1",backend="');
  });
});

describe("ballast serve: shutdown", () => {
  it("finishes an in-flight request on SIGTERM, then exits 0", async () => {
    const own = await startModelServer(fx.storeDir);
    const body = JSON.stringify(inferBody(fx.seattleHoldout.slice(0, 2), "draining"));
    const socket = net.connect(own.port, "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    let response = "";
    socket.on("data", (c) => (response += c.toString()));
    const closed = new Promise((r) => socket.once("close", r));
    // Headers and half the body now; SIGTERM; the other half after: the request must still be answered.
    socket.write(
      `POST /v2/models/weather/infer HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body.slice(0, 20)}`,
    );
    await new Promise((r) => setTimeout(r, 100));
    const exit = own.stop("SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    socket.write(body.slice(20));
    expect(await exit).toBe(0);
    await closed;
    expect(response).toMatch(/^HTTP\/1.1 200 OK/);
    expect(response).toContain('"id":"draining"');
    expect(own.lines.some((l) => l.includes('"event":"shutdown"'))).toBe(true);
  });

  it("exits 2 with a message naming the model when the store has no such model", async () => {
    const proc = await startBallast(["serve", "--store", fx.storeDir, "--model", "nope"]);
    // It listens first (liveness answers during the load), then fails loading the model and exits.
    expect(await proc.exited).toBe(2);
    expect(proc.lines.join("\n")).toContain("model nope has no versions");
  });
});
