// Open Inference Protocol v2 (REST) request decoding and response encoding for a tabular model version.
// Both `serve` (to predict) and the sidecar (to record what was asked) decode requests with this module.
import { Type, type Static } from "@sinclair/typebox";
import type { FeatureSpec } from "./features.js";
import type { Predictions } from "./predict.js";
import { Refusal } from "./refusal.js";
import { wireChecker } from "./wire/checker.js";

/** Request ids longer than this are replaced: they travel in a response header and key the feedback index. */
export const MAX_REQUEST_ID_LENGTH = 128;
const REQUEST_ID_CHARS = /^[A-Za-z0-9._:-]+$/;

/**
 * Why `id` cannot be a request id, or undefined when it can: at most 128 characters of A-Za-z0-9 . _ : -
 * (UUIDs, ULIDs, `order-17:row-3`). Anything else could break the response header or bloat the feedback index.
 */
export function requestIdProblem(id: string): string | undefined {
  if (id.length === 0) return "empty";
  if (id.length > MAX_REQUEST_ID_LENGTH) return `longer than ${MAX_REQUEST_ID_LENGTH} characters`;
  if (!REQUEST_ID_CHARS.test(id)) return "characters outside A-Za-z0-9._:-";
  return undefined;
}

export const OIP_DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"] as const;
export type OipDatatype = (typeof OIP_DATATYPES)[number];

const MAX_TENSOR_RANK = 8;
const ParametersSchema = Type.Record(Type.String(), Type.Unknown(), { errorMessage: "must be an object" });

/** An input tensor of the request: the shape of its fields; whether it fits the model is decodeInferRequest's check. */
const TensorSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, errorMessage: "must be a non-empty string" }),
    // Tabular tensors have rank 1 or 2; the bound keeps flattening nested `data` shallow.
    shape: Type.Array(Type.Integer({ minimum: 0, errorMessage: "must be a non-negative integer" }), {
      maxItems: MAX_TENSOR_RANK,
      errorMessage: `must be an array of at most ${MAX_TENSOR_RANK} non-negative integers`,
    }),
    datatype: Type.Union(
      OIP_DATATYPES.map((d) => Type.Literal(d)),
      { errorMessage: `must be one of ${OIP_DATATYPES.join(", ")}` },
    ),
    data: Type.Array(Type.Unknown(), { errorMessage: "must be an array" }),
    parameters: Type.Optional(ParametersSchema),
  },
  { errorMessage: "must be an object with name, shape, datatype, data" },
);

/**
 * The infer request body (Open Inference Protocol v2 REST, plus the `instances` form). Fields beyond these are
 * ignored, as the protocol's servers do.
 */
export const InferRequestSchema = Type.Object(
  {
    id: Type.Optional(Type.String({ errorMessage: "must be a string" })),
    parameters: Type.Optional(ParametersSchema),
    inputs: Type.Optional(Type.Array(TensorSchema, { minItems: 1, errorMessage: "must be a non-empty array of tensors" })),
    instances: Type.Optional(Type.Array(Type.Unknown(), { minItems: 1, errorMessage: "must be a non-empty array" })),
    outputs: Type.Optional(
      Type.Array(
        Type.Object(
          { name: Type.String({ errorMessage: "must be a string" }), parameters: Type.Optional(ParametersSchema) },
          { errorMessage: 'must be an object {"name": ...}' },
        ),
        {
          errorMessage: 'must be an array of {"name": ...}',
        },
      ),
    ),
  },
  { errorMessage: "request body must be a JSON object" },
);
type InferRequest = Static<typeof InferRequestSchema>;
const inferRequestProblem = wireChecker(InferRequestSchema);

/** The single row-major tensor form: `{"name": "input", "shape": [N, F], ...}`. */
export const ROW_TENSOR_NAME = "input";

export interface DecodedRequest {
  /** The body's `id` when it is a valid request id (see requestIdProblem). */
  id?: string;
  rows: number;
  /** Raw values per feature, in the model's feature order (each of length `rows`). */
  columns: unknown[][];
  /** Output names the caller asked for (all when absent). */
  outputs?: string[];
  form: "tensors" | "row-tensor" | "instances";
}

export interface OipTensor {
  name: string;
  shape: number[];
  datatype: OipDatatype;
  data: unknown[];
}

export interface InferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters?: Record<string, unknown>;
  outputs: OipTensor[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Validates and decodes an infer request body against the model's features; throws Refusal ("invalid", or "too-large" past maxRows). */
export function decodeInferRequest(body: unknown, features: readonly FeatureSpec[], outputNames: readonly string[], maxRows: number): DecodedRequest {
  if (isRecord(body) && body.inputs !== undefined && body.instances !== undefined) invalid(`send either "inputs" or "instances", not both`);
  const problem = inferRequestProblem(body);
  if (problem) invalid(problem);
  const request = body as InferRequest;
  const outputs = request.outputs?.map((o, i) => {
    if (!outputNames.includes(o.name)) invalid(`outputs[${i}]: unknown output ${clipped(o.name)}; this model has ${outputNames.join(", ")}`);
    return o.name;
  });
  let decoded: Omit<DecodedRequest, "id" | "outputs">;
  if (request.inputs !== undefined) {
    decoded = decodeInputs(request.inputs, features);
  } else if (request.instances !== undefined) {
    decoded = decodeInstances(request.instances, features);
  } else {
    invalid(`request needs "inputs" (Open Inference Protocol v2) or "instances"`);
  }
  if (decoded.rows === 0) invalid("request has no rows");
  if (decoded.rows > maxRows) throw new Refusal("too-large", `request has ${decoded.rows} rows; the limit is ${maxRows}`);
  // An id that is not a valid request id is ignored (the server answers with one it assigns), never echoed.
  const id = request.id !== undefined && requestIdProblem(request.id) === undefined ? request.id : undefined;
  return { ...decoded, ...(id !== undefined ? { id } : {}), ...(outputs ? { outputs } : {}) };
}

function invalid(message: string): never {
  throw new Refusal("invalid", message);
}

/** Names from the request are quoted and clipped before they are repeated in a message. */
function clipped(name: string): string {
  return JSON.stringify(name.length <= 64 ? name : `${name.slice(0, 63)}…`);
}

type Tensor = Static<typeof TensorSchema>;

function decodeInputs(inputs: Tensor[], features: readonly FeatureSpec[]): Omit<DecodedRequest, "id" | "outputs"> {
  const tensors = inputs.map((t, i) => flattenTensor(t, `inputs[${i}] ${clipped(t.name)}`));
  const featureIndex = new Map(features.map((f, i) => [f.name, i]));
  const only = tensors[0]!;
  if (tensors.length === 1 && !featureIndex.has(only.name)) {
    if (only.name !== ROW_TENSOR_NAME) {
      invalid(
        `inputs[0]: unknown input ${clipped(only.name)}; send "${ROW_TENSOR_NAME}" [N, ${features.length}] or one tensor per feature (${features.map((f) => f.name).join(", ")})`,
      );
    }
    return decodeRowTensor(only, features);
  }
  const columns: (unknown[] | undefined)[] = new Array(features.length);
  let rows: number | undefined;
  tensors.forEach((t, i) => {
    const where = `inputs[${i}] ${clipped(t.name)}`;
    const fi = featureIndex.get(t.name);
    if (fi === undefined) invalid(`${where}: unknown input; the model's inputs are ${features.map((f) => f.name).join(", ")}`);
    if (columns[fi]) invalid(`${where}: input given twice`);
    if (t.shape.length > 2 || (t.shape.length === 2 && t.shape[1] !== 1) || t.shape.length === 0)
      invalid(`${where}: shape [${t.shape.join(", ")}] must be [N] or [N, 1]`);
    if (rows !== undefined && t.shape[0] !== rows) invalid(`${where}: shape [${t.shape.join(", ")}] has ${t.shape[0]} rows but earlier inputs have ${rows}`);
    rows = t.shape[0]!;
    columns[fi] = checkValues(t, features[fi]!, where);
  });
  const missing = features.filter((_, i) => !columns[i]).map((f) => f.name);
  if (missing.length > 0) invalid(`missing input(s): ${missing.join(", ")}`);
  return { rows: rows ?? 0, columns: columns as unknown[][], form: "tensors" };
}

function decodeRowTensor(t: OipTensor, features: readonly FeatureSpec[]): Omit<DecodedRequest, "id" | "outputs"> {
  const where = `inputs[0] "${t.name}"`;
  if (t.shape.length !== 2 || t.shape[1] !== features.length) {
    invalid(`${where}: shape [${t.shape.join(", ")}] must be [N, ${features.length}] (features ${features.map((f) => f.name).join(", ")})`);
  }
  const rows = t.shape[0]!;
  const columns = features.map(() => new Array<unknown>(rows));
  const allNumeric = features.every((f) => f.type === "numeric");
  if (t.datatype !== "BYTES" && !allNumeric) invalid(`${where}: datatype ${t.datatype} cannot carry categorical features; use BYTES or one tensor per feature`);
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < features.length; f++) {
      const v = t.data[r * features.length + f];
      const at = (): string => `${where} element [${r}, ${f}]`;
      columns[f]![r] = t.datatype === "BYTES" ? scalar(v, at) : checkElement(v, t.datatype, at);
    }
  }
  return { rows, columns, form: "row-tensor" };
}

function decodeInstances(instances: unknown[], features: readonly FeatureSpec[]): Omit<DecodedRequest, "id" | "outputs"> {
  const names = new Set(features.map((f) => f.name));
  const columns = features.map(() => new Array<unknown>(instances.length));
  instances.forEach((inst, r) => {
    if (Array.isArray(inst)) {
      if (inst.length !== features.length)
        invalid(`instances[${r}]: ${inst.length} values, expected ${features.length} (${features.map((f) => f.name).join(", ")})`);
      inst.forEach((v, f) => (columns[f]![r] = scalar(v, () => `instances[${r}][${f}]`)));
      return;
    }
    if (!isRecord(inst)) invalid(`instances[${r}] must be an object of feature: value (or an array in feature order)`);
    const extra = Object.keys(inst).filter((k) => !names.has(k));
    if (extra.length > 0)
      invalid(`instances[${r}]: unknown feature(s) ${extra.slice(0, 10).map(clipped).join(", ")}${extra.length > 10 ? ` and ${extra.length - 10} more` : ""}`);
    features.forEach((f, fi) => {
      if (!Object.hasOwn(inst, f.name)) invalid(`instances[${r}]: missing feature "${f.name}" (send null for a missing value)`);
      columns[fi]![r] = scalar(inst[f.name], () => `instances[${r}] "${f.name}"`);
    });
  });
  return { rows: instances.length, columns, form: "instances" };
}

/** The tensor with `data` flattened (row-major, nested arrays allowed), once its element count fits its shape. */
function flattenTensor(t: Tensor, where: string): OipTensor {
  // Nested no deeper than the rank: a deeper array stays an element, and the element checks refuse it.
  const data = t.data.some(Array.isArray) ? (t.data.flat(t.shape.length) as unknown[]) : t.data;
  const expected = t.shape.reduce((a, b) => a * b, 1);
  if (data.length !== expected) invalid(`${where}: shape [${t.shape.join(", ")}] needs ${expected} values, "data" has ${data.length}`);
  return { name: t.name, shape: t.shape, datatype: t.datatype, data };
}

function checkValues(t: OipTensor, feature: FeatureSpec, where: string): unknown[] {
  if (feature.type === "numeric") {
    if (t.datatype === "BYTES") invalid(`${where}: datatype BYTES does not fit numeric feature "${feature.name}"; use FP32, FP64 or an integer type`);
    t.data.forEach((v, i) => checkElement(v, t.datatype, () => `${where} element ${i}`));
  } else if (t.datatype !== "BYTES") {
    invalid(`${where}: categorical feature "${feature.name}" needs datatype BYTES, got ${t.datatype}`);
  } else {
    t.data.forEach((v, i) => scalar(v, () => `${where} element ${i}`));
  }
  return t.data;
}

/** A feature value is a string, number, boolean or null: arrays and objects are refused here, before any profile or encoder sees them. */
function scalar(v: unknown, where: () => string): unknown {
  if (typeof v === "object" && v !== null)
    invalid(`${where()}: ${Array.isArray(v) ? "an array" : "an object"} is not a feature value (string, number, boolean or null)`);
  return v;
}

function checkElement(v: unknown, datatype: OipDatatype, where: () => string): unknown {
  if (v === null) return v; // null is an explicit missing value; preprocessing fills it
  if (datatype === "BOOL") {
    if (typeof v !== "boolean") invalid(`${where()}: datatype BOOL needs true/false, got ${shown(v)}`);
    return v;
  }
  if (typeof v !== "number" || !Number.isFinite(v)) invalid(`${where()}: datatype ${datatype} needs finite numbers, got ${shown(v)}`);
  if ((datatype.startsWith("INT") || datatype.startsWith("UINT")) && !Number.isInteger(v)) invalid(`${where()}: datatype ${datatype} needs integers, got ${v}`);
  if (datatype.startsWith("UINT") && v < 0) invalid(`${where()}: datatype ${datatype} needs non-negative integers, got ${v}`);
  return v;
}

/** A value from the request, as JSON and clipped, for a message. */
function shown(v: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = "a value nested too deeply to show"; // JSON.stringify runs out of stack on very deep arrays
  }
  return text.length <= 80 ? text : `${text.slice(0, 79)}…`;
}

export function encodeInferResponse(
  modelName: string,
  version: string,
  id: string,
  p: Predictions,
  classes: readonly string[] | undefined,
  requested: readonly string[] | undefined,
): InferResponse {
  const outputs: OipTensor[] = [];
  const want = (name: string): boolean => !requested || requested.includes(name);
  if (p.labels) {
    if (want("label")) outputs.push({ name: "label", shape: [p.rows], datatype: "BYTES", data: p.labels });
    if (want("probabilities")) {
      outputs.push({ name: "probabilities", shape: [p.rows, classes!.length], datatype: "FP32", data: Array.from(p.probabilities!) });
    }
  } else if (want("value")) {
    outputs.push({ name: "value", shape: [p.rows], datatype: "FP32", data: p.values! });
  }
  return {
    model_name: modelName,
    model_version: version,
    id,
    ...(classes ? { parameters: { classes } } : {}),
    outputs,
  };
}

/** The per-row predictions in a response (label or value), for the sidecar; undefined when the caller filtered them out. */
export function predictionsFromResponse(body: unknown, classes: readonly string[] | undefined): (string | number)[] | undefined {
  if (!isRecord(body) || !Array.isArray(body.outputs)) return undefined;
  const byName = new Map<string, Record<string, unknown>>();
  for (const o of body.outputs) if (isRecord(o) && typeof o.name === "string") byName.set(o.name, o);
  const label = byName.get("label")?.data;
  if (Array.isArray(label)) return label as string[];
  const value = byName.get("value")?.data;
  if (Array.isArray(value)) return value as number[];
  const probs = byName.get("probabilities");
  if (classes && probs && Array.isArray(probs.data)) {
    const data = probs.data as number[];
    const k = classes.length;
    const out: string[] = [];
    for (let r = 0; r * k < data.length; r++) {
      let best = 0;
      for (let c = 1; c < k; c++) if (data[r * k + c]! > data[r * k + best]!) best = c;
      out.push(classes[best]!);
    }
    return out;
  }
  return undefined;
}
