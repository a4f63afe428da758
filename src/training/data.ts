// Training data sources: CSV, JSON Lines, and a sidecar's request log (inference rows joined to feedback).
// Every source is streamed: memory follows the rows kept, never the size of a file or a log.
import fs from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { parse as parseCsv } from "csv-parse";
import { DEFAULT_HTTP_LIMITS, httpGetStream } from "../runtime/http-get.js";
import { MAX_LINE_LENGTH, readLines } from "../runtime/line-reader.js";
import { joinLog } from "../runtime/request-log.js";
import { readS3Object } from "../runtime/s3-store.js";
import { httpLimitsFromEnv, resolveStorePath } from "../runtime/store.js";

export const SIDECAR_LOG_SCHEME = "sidecar-log://";

export interface Table {
  /** Column names in first-seen order across all sources. */
  columns: string[];
  rows: Record<string, unknown>[];
  /** Where each source came from, as given on the command line. */
  sources: string[];
  /** Time range of sidecar-log rows (ISO), when any were loaded. */
  from?: string;
  to?: string;
  /** Label column / task recorded by a sidecar log, used when --label / --task are not given. */
  logLabel?: string;
  logTask?: "classification" | "regression";
}

export class DataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DataError";
  }
}

export interface LoadOptions {
  /** Where pvc:// claims are mounted (see the model store). */
  pvcMountRoot?: string;
  /** Keep only the newest N labelled rows of sidecar logs (by inference time). */
  maxFeedbackRows?: number;
  /** Format of file sources whose name has no telling extension (default: by extension). */
  format?: "csv" | "jsonl" | "json";
  /** Refuse an http(s) source larger than this many bytes (default DEFAULT_DATA_HTTP_MAX_BYTES). */
  httpMaxBytes?: number;
}

/** An http(s) data source may send at most this much: a bound against endless or mistaken sources. */
export const DEFAULT_DATA_HTTP_MAX_BYTES = 4 * 1024 * 1024 * 1024;
/** A JSON array (not JSON Lines) is parsed whole: larger ones must be JSON Lines, which stream. */
export const MAX_JSON_ARRAY_BYTES = 256 * 1024 * 1024;

/**
 * Loads and concatenates sources: CSV, JSON Lines or a JSON array of rows (by extension), as paths,
 * file://, pvc://, http(s):// or s3:// URIs; a directory or `sidecar-log://dir` is read as a sidecar log.
 */
export async function loadTable(sources: readonly string[], options: LoadOptions = {}): Promise<Table> {
  const table: Table = { columns: [], rows: [], sources: [...sources] };
  const seen = new Set<string>();
  const addColumns = (names: Iterable<string>): void => {
    for (const n of names) {
      if (!seen.has(n)) {
        seen.add(n);
        table.columns.push(n);
      }
    }
  };
  for (const source of sources) {
    const kind = await sourceKind(source, options);
    if (kind === "log") {
      const dir = localPath(source.startsWith(SIDECAR_LOG_SCHEME) ? source.slice(SIDECAR_LOG_SCHEME.length) : source, options);
      const joined = await joinLog(dir);
      if (joined.label === undefined) throw new DataError(`${source}: no sidecar log segments found in ${dir}`);
      const label = joined.label;
      if (options.maxFeedbackRows !== undefined) joined.rows = joined.rows.slice(-options.maxFeedbackRows);
      for (const r of joined.rows) {
        addColumns(Object.keys(r.features));
        table.rows.push({ ...r.features, [label]: r.label });
      }
      addColumns([label]);
      table.logLabel ??= label;
      table.logTask ??= joined.task;
      const first = joined.rows[0];
      const last = joined.rows.at(-1);
      if (first && last) {
        const from = new Date(first.ts).toISOString();
        const to = new Date(last.ts).toISOString();
        if (!table.from || from < table.from) table.from = from;
        if (!table.to || to > table.to) table.to = to;
      }
      continue;
    }
    const input = await openSource(source, options);
    try {
      for await (const row of kind === "csv" ? csvRows(source, input) : jsonRows(source, input)) {
        addColumns(Object.keys(row));
        table.rows.push(row);
      }
    } finally {
      input.destroy();
    }
  }
  return table;
}

function isHttp(source: string): boolean {
  return source.startsWith("http://") || source.startsWith("https://");
}

function isS3(source: string): boolean {
  return source.startsWith("s3://");
}

/** The local path of a file://, pvc:// or plain-path source; a bad URI is the user's to fix (DataError). */
export function localPath(source: string, options: { pvcMountRoot?: string }): string {
  try {
    return resolveStorePath(source, options);
  } catch (err) {
    throw new DataError((err as Error).message);
  }
}

async function sourceKind(source: string, options: LoadOptions): Promise<"csv" | "jsonl" | "log"> {
  if (source.startsWith(SIDECAR_LOG_SCHEME)) return "log";
  let name = source;
  if (isHttp(source)) {
    name = new URL(source).pathname;
  } else if (!isS3(source)) {
    const file = localPath(source, options);
    let stat;
    try {
      stat = await fs.stat(file);
    } catch {
      throw new DataError(`${source}: no such file or directory${file !== source ? ` (${file})` : ""}`);
    }
    if (stat.isDirectory()) return "log";
  }
  if (options.format) return options.format === "csv" ? "csv" : "jsonl";
  const ext = path.extname(name).toLowerCase();
  if (ext === ".csv") return "csv";
  if (ext === ".jsonl" || ext === ".ndjson" || ext === ".json") return "jsonl";
  throw new DataError(`${source}: unknown file type "${ext}" (use .csv, .jsonl/.ndjson/.json, --data-format, or a sidecar log directory)`);
}

/** The bytes of a file, http(s) or s3:// source as a stream (http: https unless allowed, bounded in size and time). */
async function openSource(source: string, options: LoadOptions): Promise<Readable> {
  if (isHttp(source)) {
    try {
      return await httpGetStream(source, { ...DEFAULT_HTTP_LIMITS, ...httpLimitsFromEnv(), maxBytes: options.httpMaxBytes ?? DEFAULT_DATA_HTTP_MAX_BYTES });
    } catch (err) {
      throw new DataError(`${source}: ${(err as Error).message}`);
    }
  }
  if (isS3(source)) {
    try {
      return Readable.from([await readS3Object(source)]);
    } catch (err) {
      throw new DataError(`${source}: ${(err as Error).message}`);
    }
  }
  const file = localPath(source, options);
  try {
    const handle = await fs.open(file, "r");
    return handle.createReadStream();
  } catch (err) {
    throw new DataError(`${source}: cannot read: ${(err as Error).message}`);
  }
}

/** A stream's failure as the user's problem with this source (a cut connection, a body over the cap). */
function sourceError(source: string, err: unknown): DataError {
  return err instanceof DataError ? err : new DataError(`${source}: cannot read: ${(err as Error).message}`);
}

async function* csvRows(file: string, input: Readable): AsyncGenerator<Record<string, unknown>> {
  const parser = parseCsv({ columns: true, skip_empty_lines: true, trim: true, bom: true });
  input.once("error", (err) => parser.destroy(sourceError(file, err)));
  input.pipe(parser);
  try {
    for await (const row of parser) yield row as Record<string, unknown>;
  } catch (err) {
    if (err instanceof DataError) throw err;
    const e = err as Error & { lines?: number };
    throw new DataError(`${file}${e.lines ? `:${e.lines}` : ""}: invalid CSV: ${e.message}`);
  }
}

/** A JSON array of row objects (read whole, up to MAX_JSON_ARRAY_BYTES), or JSON Lines (streamed). */
async function* jsonRows(file: string, input: Readable): AsyncGenerator<Record<string, unknown>> {
  const asRow = (value: unknown, where: string): Record<string, unknown> => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new DataError(`${where}: each line must be a JSON object of column: value`);
    return value as Record<string, unknown>;
  };
  let array: string[] | undefined;
  let arrayLength = 0;
  let first = true;
  try {
    for await (const { text, number, overlong } of readLines(input)) {
      if (overlong) throw new DataError(`${file}:${number}: line longer than ${MAX_LINE_LENGTH} characters: not a row of JSON Lines`);
      if (array === undefined && text.trim() === "") continue;
      // The first non-blank line decides: an array is read whole, JSON Lines one line at a time.
      if (first && text.trimStart().startsWith("[")) array = [];
      first = false;
      if (array !== undefined) {
        arrayLength += text.length + 1;
        if (arrayLength > MAX_JSON_ARRAY_BYTES)
          throw new DataError(`${file}: a JSON array over ${MAX_JSON_ARRAY_BYTES} bytes: write it as JSON Lines (one object per line), which streams`);
        array.push(text);
        continue;
      }
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        throw new DataError(`${file}:${number}: invalid JSON: ${(err as Error).message}`);
      }
      yield asRow(value, `${file}:${number}`);
    }
  } catch (err) {
    throw sourceError(file, err);
  }
  if (array !== undefined) yield* parseJsonArray(file, array.join("\n"));
}

function parseJsonArray(file: string, text: string): Record<string, unknown>[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DataError(`${file}: invalid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(value)) throw new DataError(`${file}: expected a JSON array of row objects or JSON Lines`);
  value.forEach((row, i) => {
    if (typeof row !== "object" || row === null || Array.isArray(row)) throw new DataError(`${file}: element ${i} must be an object of column: value`);
  });
  return value as Record<string, unknown>[];
}

/**
 * JSON Lines: `read` turns each non-empty line's value into a row or throws a DataError; errors name the
 * file and line (`where` is "<file>:<line>").
 */
export function parseJsonLines<T>(file: string, text: string, read: (value: unknown, where: string, line: string) => T): T[] {
  const rows: T[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw new DataError(`${file}:${i + 1}: invalid JSON: ${(err as Error).message}`);
    }
    rows.push(read(value, `${file}:${i + 1}`, line));
  });
  return rows;
}
