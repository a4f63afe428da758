// `ballast drift`'s reader: one pass over a CSV / JSON Lines / JSON array / Parquet file into columns — a
// Float64Array while every cell of a column reads as a number, the raw cells otherwise — the input
// `DatasetProfile.fromColumns` profiles in bulk. Errors name the file and the line.
import { createReadStream } from "node:fs";
import { open, readFile } from "node:fs/promises";
import { extname } from "node:path";
import { createInterface } from "node:readline";
import { classifyNumeric, type FeatureType } from "../monitoring/schema.js";

/** Bad input: reported on stderr, exit code 2. */
export class DriftInputError extends Error {}

export type FileFormat = "csv" | "jsonl" | "parquet";

export function formatOf(path: string): FileFormat {
  const ext = extname(path).toLowerCase();
  if (ext === ".csv" || ext === ".tsv" || ext === ".txt") return "csv";
  if (ext === ".jsonl" || ext === ".ndjson" || ext === ".json") return "jsonl";
  if (ext === ".parquet") return "parquet";
  throw new DriftInputError(`${path}: cannot tell the format from "${ext || "no extension"}"; use .csv, .jsonl (.ndjson) or .parquet`);
}

/**
 * A column as read. `numbers`: every cell was a number or blank; blanks are NaN there and counted in
 * `blanks`. `cells`: the raw cells. `unread`: it held numbers, then a cell that is not one — its text must be
 * read again (the numbers lost how they were written: "1.50", "007") if it is profiled as categorical.
 */
export type ColumnValues =
  | { kind: "numbers"; values: Float64Array; blanks: number; firstInvalid?: { line: number; value: unknown } }
  | { kind: "cells"; values: unknown[] }
  | { kind: "unread" };

export interface ColumnTable {
  path: string;
  /** Every column of the file, in the order first seen. */
  columns: string[];
  rows: number;
  /** The columns read (those asked for that the file has). */
  values: Map<string, ColumnValues>;
}

export interface ReadOptions {
  /** Read only these columns (default: all); the others are only named in `columns`. */
  only?: ReadonlySet<string>;
  /** Declared types: `categorical` columns are kept as cells, `numeric` ones as numbers (a cell that is not a number is recorded in `firstInvalid`). */
  declared: ReadonlyMap<string, FeatureType>;
}

const MIN_CAPACITY = 1024;

/** Collects one column's cells, row by row (rows a file skips for this column are blanks). */
class ColumnBuilder {
  private numbers: Float64Array | undefined;
  private cells: unknown[] | undefined;
  private unread = false;
  private length = 0;
  private blanks = 0;
  private sawNumber = false;
  private firstInvalid: { line: number; value: unknown } | undefined;

  constructor(private readonly declared: FeatureType | undefined) {
    if (declared === "categorical") this.cells = [];
    else this.numbers = new Float64Array(MIN_CAPACITY);
  }

  add(row: number, raw: unknown, line: number): void {
    if (row > this.length) this.pad(row);
    if (this.cells) {
      this.cells.push(raw);
      this.length++;
      return;
    }
    if (this.unread) return;
    const cell = classifyNumeric(raw);
    if (cell.kind === "number") {
      this.push(cell.value);
      this.sawNumber = true;
    } else if (cell.kind === "missing") {
      this.push(Number.NaN);
      this.blanks++;
    } else if (this.declared === "numeric") {
      this.firstInvalid ??= { line, value: raw };
      this.push(Number.NaN);
    } else if (this.sawNumber) {
      this.unread = true;
      this.numbers = undefined;
    } else {
      // Only blanks so far: they are blanks as cells too.
      this.cells = new Array<unknown>(this.length).fill(undefined);
      this.cells.push(raw);
      this.numbers = undefined;
      this.length++;
    }
  }

  /** A run of numbers from row `row` on (a Parquet DOUBLE page: no blanks, no text). */
  addFloat64(row: number, values: Float64Array): void {
    if (!this.numbers || values.length === 0) {
      for (let i = 0; i < values.length; i++) this.add(row + i, values[i], row + i + 1);
      return;
    }
    if (row > this.length) this.pad(row);
    this.reserve(this.length + values.length);
    this.numbers.set(values, this.length);
    this.length += values.length;
    this.sawNumber = true;
  }

  finish(rows: number): ColumnValues {
    if (rows > this.length) this.pad(rows);
    if (this.cells) return { kind: "cells", values: this.cells };
    if (this.unread) return { kind: "unread" };
    const values = this.numbers!.subarray(0, rows);
    return { kind: "numbers", values, blanks: this.blanks, ...(this.firstInvalid ? { firstInvalid: this.firstInvalid } : {}) };
  }

  private pad(rows: number): void {
    if (this.cells) {
      while (this.cells.length < rows) this.cells.push(undefined);
    } else if (this.numbers) {
      this.reserve(rows);
      this.numbers.fill(Number.NaN, this.length, rows);
      this.blanks += rows - this.length;
    }
    this.length = rows;
  }

  private push(value: number): void {
    if (this.length === this.numbers!.length) this.reserve(this.length + 1);
    this.numbers![this.length++] = value;
  }

  private reserve(capacity: number): void {
    if (capacity <= this.numbers!.length) return;
    const grown = new Float64Array(Math.max(capacity, this.numbers!.length * 2));
    grown.set(this.numbers!.subarray(0, this.length));
    this.numbers = grown;
  }
}

/** The builders of one file, by column name, created as columns are first seen. */
class TableBuilder {
  readonly columns: string[] = [];
  private readonly builders = new Map<string, ColumnBuilder | null>();

  constructor(
    readonly path: string,
    private readonly options: ReadOptions,
  ) {}

  /** The builder of `name` (null when it is not read), adding the column on first sight. */
  column(name: string): ColumnBuilder | null {
    let builder = this.builders.get(name);
    if (builder === undefined) {
      this.columns.push(name);
      builder = this.options.only && !this.options.only.has(name) ? null : new ColumnBuilder(this.options.declared.get(name));
      this.builders.set(name, builder);
    }
    return builder;
  }

  finish(rows: number): ColumnTable {
    if (rows === 0) throw new DriftInputError(`${this.path}: no data rows`);
    const values = new Map<string, ColumnValues>();
    for (const [name, builder] of this.builders) if (builder) values.set(name, builder.finish(rows));
    return { path: this.path, columns: this.columns, rows, values };
  }
}

/** Reads `path` once into columns. */
export function readColumns(path: string, options: ReadOptions): Promise<ColumnTable> {
  const table = new TableBuilder(path, options);
  const format = formatOf(path);
  return format === "csv" ? readCsv(table) : format === "jsonl" ? readJson(table) : readParquet(table);
}

const QUOTE = 0x22;
const NEWLINE = 0x0a;
/** A record longer than this is an unclosed quote, not data: stop before the text outgrows a string. */
const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** End (index of the newline) of the last whole record in `bytes`, which starts at a record start; -1 if none. */
function lastRecordEnd(bytes: Buffer): number {
  if (bytes.indexOf(QUOTE) === -1) return bytes.lastIndexOf(NEWLINE);
  // RFC 4180: a newline ends a record outside quotes; a doubled quote inside quotes toggles twice.
  let quoted = false;
  let end = -1;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b === QUOTE) quoted = !quoted;
    else if (b === NEWLINE && !quoted) end = i;
  }
  return end;
}

// d3-dsv parses whole records fast (csv-parse took 3.5× its CPU, measured); the file streams through it in pieces
// cut at record ends.
async function readCsv(table: TableBuilder): Promise<ColumnTable> {
  const { dsvFormat } = await import("d3-dsv");
  const { path } = table;
  const format = dsvFormat(extname(path).toLowerCase() === ".tsv" ? "\t" : ",");
  let header: (ColumnBuilder | null)[] | undefined;
  let rows = 0;
  let line = 0;
  const parse = (text: string): void => {
    const quoted = text.includes('"');
    format.parseRows(text, (fields) => {
      line++;
      // The line a record ends on, as csv-parse counted (a quoted field may hold newlines).
      if (quoted) for (const field of fields) for (let at = field.indexOf("\n"); at !== -1; at = field.indexOf("\n", at + 1)) line++;
      if (fields.length === 1 && fields[0] === "") return null;
      if (!header) {
        // A repeated name: the last column of that name is the one read (as csv-parse's objects had it).
        const last = new Map(fields.map((name, i) => [name, i]));
        header = fields.map((name, i) => (last.get(name) === i ? table.column(name) : null));
        return null;
      }
      if (fields.length !== header.length) {
        throw new DriftInputError(`${path} line ${line}: ${fields.length} fields where the header has ${header.length}`);
      }
      for (let i = 0; i < fields.length; i++) header[i]?.add(rows, fields[i], line);
      rows++;
      return null;
    });
  };
  let pending: Buffer = Buffer.alloc(0);
  let first = true;
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 }) as AsyncIterable<Buffer>) {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    const end = lastRecordEnd(pending);
    if (end === -1) {
      if (pending.length > MAX_RECORD_BYTES) throw new DriftInputError(`${path} line ${line + 1}: a quoted field is never closed`);
      continue;
    }
    let text = pending.toString("utf8", 0, end + 1);
    if (first) text = text.replace(/^\uFEFF/, "");
    first = false;
    parse(text);
    pending = pending.subarray(end + 1);
  }
  if (pending.length > 0) {
    if (lastRecordEnd(Buffer.concat([pending, Buffer.from("\n")])) !== pending.length) {
      throw new DriftInputError(`${path} line ${line + 1}: a quoted field is never closed`);
    }
    const text = pending.toString("utf8");
    parse(first ? text.replace(/^\uFEFF/, "") : text);
  }
  return table.finish(rows);
}

async function startsWithBracket(path: string): Promise<boolean> {
  const handle = await open(path);
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(256), 0, 256, 0);
    return buffer.subarray(0, bytesRead).toString("utf8").trimStart().startsWith("[");
  } finally {
    await handle.close();
  }
}

function addObject(table: TableBuilder, row: number, value: Record<string, unknown>, line: number): void {
  for (const key in value) table.column(key)?.add(row, value[key], line);
}

// A .json file may be one array of objects (like vega-datasets' files) instead of JSON Lines.
async function readJsonArray(table: TableBuilder): Promise<ColumnTable> {
  const { path } = table;
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new DriftInputError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (!Array.isArray(value)) throw new DriftInputError(`${path}: expected an array of objects or JSON Lines`);
  for (let i = 0; i < value.length; i++) {
    const row: unknown = value[i];
    if (typeof row !== "object" || row === null || Array.isArray(row))
      throw new DriftInputError(`${path} element ${i}: expected an object, got ${JSON.stringify(row)}`);
    addObject(table, i, row as Record<string, unknown>, i + 1);
  }
  return table.finish(value.length);
}

async function readJson(table: TableBuilder): Promise<ColumnTable> {
  const { path } = table;
  if (extname(path).toLowerCase() === ".json" && (await startsWithBracket(path))) return readJsonArray(table);
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let line = 0;
  let rows = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      const message = (err as Error).message;
      const position = /position (\d+)/.exec(message)?.[1];
      const column = position !== undefined ? `, column ${Number(position) + 1}` : "";
      throw new DriftInputError(`${path} line ${line}${column}: not valid JSON (${message})`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new DriftInputError(`${path} line ${line}: expected a JSON object per line, got ${Array.isArray(value) ? "an array" : JSON.stringify(value)}`);
    }
    addObject(table, rows++, value as Record<string, unknown>, line);
  }
  return table.finish(rows);
}

// Column by column, one row group at a time, so a large file is never in memory as decoded pages all at once.
async function readParquet(table: TableBuilder): Promise<ColumnTable> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetRead, parquetSchema } = await import("hyparquet");
  const { path } = table;
  const unreadable = (err: unknown) => new DriftInputError(`${path}: not a readable Parquet file (${(err as Error).message})`);
  let file;
  let metadata;
  try {
    file = await asyncBufferFromFile(path);
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    throw unreadable(err);
  }
  const builders = new Map(parquetSchema(metadata).children.map((child) => [child.element.name, table.column(child.element.name)]));
  const read = [...builders].filter(([, builder]) => builder).map(([name]) => name);
  let groupStart = 0;
  for (const group of metadata.row_groups) {
    const groupEnd = groupStart + Number(group.num_rows);
    if (read.length > 0) {
      try {
        await parquetRead({
          file,
          metadata,
          columns: read,
          rowStart: groupStart,
          rowEnd: groupEnd,
          onChunk: ({ columnName, columnData, rowStart }) => {
            const builder = builders.get(columnName)!;
            if (columnData instanceof Float64Array) builder.addFloat64(rowStart, columnData);
            else for (let i = 0; i < columnData.length; i++) builder.add(rowStart + i, columnData[i], rowStart + i + 1);
          },
        });
      } catch (err) {
        throw unreadable(err);
      }
    }
    groupStart = groupEnd;
  }
  return table.finish(groupStart);
}
