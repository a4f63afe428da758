// Training data sources: CSV, JSON Lines, and a sidecar's request log (inference rows joined to feedback).
import fs from "node:fs/promises";
import path from "node:path";
import { parse as parseCsv } from "csv-parse/sync";
import { joinLog } from "../runtime/request-log.js";
import { resolveStorePath } from "../runtime/store.js";

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
}

/**
 * Loads and concatenates sources: CSV, JSON Lines or a JSON array of rows (by extension), as paths,
 * file://, pvc:// or http(s):// URIs; a directory or `sidecar-log://dir` is read as a sidecar log.
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
    const text = await readText(source, options);
    const rows = kind === "csv" ? parseCsvText(source, text) : parseJsonRows(source, text);
    for (const row of rows) addColumns(Object.keys(row));
    table.rows.push(...rows);
  }
  return table;
}

function isHttp(source: string): boolean {
  return source.startsWith("http://") || source.startsWith("https://");
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
  } else {
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

async function readText(source: string, options: LoadOptions): Promise<string> {
  if (isHttp(source)) {
    let res: Response;
    try {
      res = await fetch(source, { signal: AbortSignal.timeout(60_000) });
    } catch (err) {
      throw new DataError(`${source}: GET failed: ${(err as Error).message}`);
    }
    if (!res.ok) throw new DataError(`${source}: GET returned HTTP ${res.status}`);
    return res.text();
  }
  try {
    return await fs.readFile(localPath(source, options), "utf8");
  } catch (err) {
    throw new DataError(`${source}: cannot read: ${(err as Error).message}`);
  }
}

function parseCsvText(file: string, text: string): Record<string, unknown>[] {
  try {
    return parseCsv(text, { columns: true, skip_empty_lines: true, trim: true, bom: true }) as Record<string, unknown>[];
  } catch (err) {
    const e = err as Error & { lines?: number };
    throw new DataError(`${file}${e.lines ? `:${e.lines}` : ""}: invalid CSV: ${e.message}`);
  }
}

/** A JSON array of row objects, or JSON Lines (one object per line). */
function parseJsonRows(file: string, text: string): Record<string, unknown>[] {
  if (text.trimStart().startsWith("[")) {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new DataError(`${file}: invalid JSON: ${(err as Error).message}`);
    }
    const rows = value as unknown[];
    rows.forEach((row, i) => {
      if (typeof row !== "object" || row === null || Array.isArray(row)) throw new DataError(`${file}: element ${i} must be an object of column: value`);
    });
    return rows as Record<string, unknown>[];
  }
  return parseJsonLines(file, text, (value, where) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw new DataError(`${where}: each line must be a JSON object of column: value`);
    return value as Record<string, unknown>;
  });
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
