// Open Inference Protocol v2 (REST) request decoding and response encoding for a tabular model version.
// Both `serve` (to predict) and the sidecar (to record what was asked) decode requests with this module.
import type { FeatureSpec } from "./features.js";
import type { Predictions } from "./predict.js";

/** A request the caller got wrong: becomes `{"error": message}` with this status. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "RequestError";
  }
}

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

export const OIP_DATATYPES = [
  "BOOL",
  "UINT8",
  "UINT16",
  "UINT32",
  "UINT64",
  "INT8",
  "INT16",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BYTES",
] as const;
export type OipDatatype = (typeof OIP_DATATYPES)[number];

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

/** Validates and decodes an infer request body against the model's features; throws RequestError (400). */
export function decodeInferRequest(body: unknown, features: readonly FeatureSpec[], outputNames: readonly string[], maxRows: number): DecodedRequest {
  if (!isRecord(body)) throw new RequestError(400, "request body must be a JSON object");
  if (body.id !== undefined && typeof body.id !== "string") throw new RequestError(400, `"id" must be a string`);
  if (body.parameters !== undefined && !isRecord(body.parameters)) throw new RequestError(400, `"parameters" must be an object`);
  const outputs = decodeRequestedOutputs(body.outputs, outputNames);
  let decoded: Omit<DecodedRequest, "id" | "outputs">;
  if (body.inputs !== undefined) {
    if (body.instances !== undefined) throw new RequestError(400, `send either "inputs" or "instances", not both`);
    decoded = decodeInputs(body.inputs, features);
  } else if (body.instances !== undefined) {
    decoded = decodeInstances(body.instances, features);
  } else {
    throw new RequestError(400, `request needs "inputs" (Open Inference Protocol v2) or "instances"`);
  }
  if (decoded.rows === 0) throw new RequestError(400, "request has no rows");
  if (decoded.rows > maxRows) throw new RequestError(413, `request has ${decoded.rows} rows; the limit is ${maxRows}`);
  // An id that is not a valid request id is ignored (the server answers with one it assigns), never echoed.
  const id = typeof body.id === "string" && requestIdProblem(body.id) === undefined ? body.id : undefined;
  return { ...decoded, ...(id !== undefined ? { id } : {}), ...(outputs ? { outputs } : {}) };
}

function decodeRequestedOutputs(value: unknown, outputNames: readonly string[]): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw new RequestError(400, `"outputs" must be an array of {"name": ...}`);
  return value.map((o, i) => {
    if (!isRecord(o) || typeof o.name !== "string") throw new RequestError(400, `outputs[${i}] must be an object with a string "name"`);
    if (!outputNames.includes(o.name)) {
      throw new RequestError(400, `outputs[${i}]: unknown output "${o.name}"; this model has ${outputNames.join(", ")}`);
    }
    return o.name;
  });
}

function decodeInputs(inputs: unknown, features: readonly FeatureSpec[]): Omit<DecodedRequest, "id" | "outputs"> {
  if (!Array.isArray(inputs) || inputs.length === 0) throw new RequestError(400, `"inputs" must be a non-empty array of tensors`);
  const tensors = inputs.map((t, i) => checkTensor(t, `inputs[${i}]`));
  const featureIndex = new Map(features.map((f, i) => [f.name, i]));
  const only = tensors[0]!;
  if (tensors.length === 1 && !featureIndex.has(only.name)) {
    if (only.name !== ROW_TENSOR_NAME) {
      throw new RequestError(400, `inputs[0]: unknown input "${only.name}"; send "${ROW_TENSOR_NAME}" [N, ${features.length}] or one tensor per feature (${features.map((f) => f.name).join(", ")})`);
    }
    return decodeRowTensor(only, features);
  }
  const columns: (unknown[] | undefined)[] = new Array(features.length);
  let rows: number | undefined;
  tensors.forEach((t, i) => {
    const where = `inputs[${i}] "${t.name}"`;
    const fi = featureIndex.get(t.name);
    if (fi === undefined) {
      throw new RequestError(400, `${where}: unknown input; the model's inputs are ${features.map((f) => f.name).join(", ")}`);
    }
    if (columns[fi]) throw new RequestError(400, `${where}: input given twice`);
    if (t.shape.length > 2 || (t.shape.length === 2 && t.shape[1] !== 1) || t.shape.length === 0) {
      throw new RequestError(400, `${where}: shape [${t.shape.join(", ")}] must be [N] or [N, 1]`);
    }
    if (rows !== undefined && t.shape[0] !== rows) {
      throw new RequestError(400, `${where}: shape [${t.shape.join(", ")}] has ${t.shape[0]} rows but earlier inputs have ${rows}`);
    }
    rows = t.shape[0]!;
    columns[fi] = checkValues(t, features[fi]!, where);
  });
  const missing = features.filter((_, i) => !columns[i]).map((f) => f.name);
  if (missing.length > 0) throw new RequestError(400, `missing input(s): ${missing.join(", ")}`);
  return { rows: rows ?? 0, columns: columns as unknown[][], form: "tensors" };
}

function decodeRowTensor(t: OipTensor, features: readonly FeatureSpec[]): Omit<DecodedRequest, "id" | "outputs"> {
  const where = `inputs[0] "${t.name}"`;
  if (t.shape.length !== 2 || t.shape[1] !== features.length) {
    throw new RequestError(400, `${where}: shape [${t.shape.join(", ")}] must be [N, ${features.length}] (features ${features.map((f) => f.name).join(", ")})`);
  }
  const rows = t.shape[0]!;
  const columns = features.map(() => new Array<unknown>(rows));
  const allNumeric = features.every((f) => f.type === "numeric");
  if (t.datatype !== "BYTES" && !allNumeric) {
    throw new RequestError(400, `${where}: datatype ${t.datatype} cannot carry categorical features; use BYTES or one tensor per feature`);
  }
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < features.length; f++) {
      const v = t.data[r * features.length + f];
      if (t.datatype !== "BYTES") checkElement(v, t.datatype, () => `${where} element [${r}, ${f}]`);
      columns[f]![r] = v;
    }
  }
  return { rows, columns, form: "row-tensor" };
}

function decodeInstances(instances: unknown, features: readonly FeatureSpec[]): Omit<DecodedRequest, "id" | "outputs"> {
  if (!Array.isArray(instances) || instances.length === 0) throw new RequestError(400, `"instances" must be a non-empty array`);
  const names = new Set(features.map((f) => f.name));
  const columns = features.map(() => new Array<unknown>(instances.length));
  instances.forEach((inst, r) => {
    if (Array.isArray(inst)) {
      if (inst.length !== features.length) {
        throw new RequestError(400, `instances[${r}]: ${inst.length} values, expected ${features.length} (${features.map((f) => f.name).join(", ")})`);
      }
      inst.forEach((v, f) => (columns[f]![r] = v));
      return;
    }
    if (!isRecord(inst)) throw new RequestError(400, `instances[${r}] must be an object of feature: value (or an array in feature order)`);
    const extra = Object.keys(inst).filter((k) => !names.has(k));
    if (extra.length > 0) throw new RequestError(400, `instances[${r}]: unknown feature(s) ${extra.join(", ")}`);
    features.forEach((f, fi) => {
      if (!(f.name in inst)) throw new RequestError(400, `instances[${r}]: missing feature "${f.name}" (send null for a missing value)`);
      columns[fi]![r] = inst[f.name];
    });
  });
  return { rows: instances.length, columns, form: "instances" };
}

function checkTensor(t: unknown, where: string): OipTensor {
  if (!isRecord(t)) throw new RequestError(400, `${where} must be an object with name, shape, datatype, data`);
  if (typeof t.name !== "string" || t.name === "") throw new RequestError(400, `${where}: "name" must be a non-empty string`);
  const at = `${where} "${t.name}"`;
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) {
    throw new RequestError(400, `${at}: "shape" must be an array of non-negative integers`);
  }
  if (typeof t.datatype !== "string" || !(OIP_DATATYPES as readonly string[]).includes(t.datatype)) {
    throw new RequestError(400, `${at}: "datatype" ${JSON.stringify(t.datatype)} is not one of ${OIP_DATATYPES.join(", ")}`);
  }
  if (!Array.isArray(t.data)) throw new RequestError(400, `${at}: "data" must be an array`);
  const data = t.data.some(Array.isArray) ? (t.data.flat(Infinity) as unknown[]) : t.data;
  const shape = t.shape as number[];
  const expected = shape.reduce((a, b) => a * b, 1);
  if (data.length !== expected) {
    throw new RequestError(400, `${at}: shape [${shape.join(", ")}] needs ${expected} values, "data" has ${data.length}`);
  }
  return { name: t.name, shape, datatype: t.datatype as OipDatatype, data };
}

function checkValues(t: OipTensor, feature: FeatureSpec, where: string): unknown[] {
  if (feature.type === "numeric") {
    if (t.datatype === "BYTES") throw new RequestError(400, `${where}: datatype BYTES does not fit numeric feature "${feature.name}"; use FP32, FP64 or an integer type`);
    t.data.forEach((v, i) => checkElement(v, t.datatype, () => `${where} element ${i}`));
  } else if (t.datatype !== "BYTES") {
    throw new RequestError(400, `${where}: categorical feature "${feature.name}" needs datatype BYTES, got ${t.datatype}`);
  }
  return t.data;
}

function checkElement(v: unknown, datatype: OipDatatype, where: () => string): void {
  if (v === null) return; // null is an explicit missing value; preprocessing fills it
  if (datatype === "BOOL") {
    if (typeof v !== "boolean") throw new RequestError(400, `${where()}: datatype BOOL needs true/false, got ${JSON.stringify(v)}`);
    return;
  }
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new RequestError(400, `${where()}: datatype ${datatype} needs finite numbers, got ${JSON.stringify(v)}`);
  }
  if ((datatype.startsWith("INT") || datatype.startsWith("UINT")) && !Number.isInteger(v)) {
    throw new RequestError(400, `${where()}: datatype ${datatype} needs integers, got ${v}`);
  }
  if (datatype.startsWith("UINT") && v < 0) throw new RequestError(400, `${where()}: datatype ${datatype} needs non-negative integers, got ${v}`);
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
