// `ballast drift`: an offline drift report between two CSV / JSON Lines / Parquet files.
// Exit 0 = no drift, 1 = drift, 2 = bad input (the message names the file, line and column).
import { createReadStream } from "node:fs";
import { access, open, readFile, writeFile } from "node:fs/promises";
import { extname } from "node:path";
import { createInterface } from "node:readline";
import { Command, Option } from "commander";

import { CORRECTIONS, DRIFT_METHOD_CHOICES, THRESHOLD_MODES, type Correction, type DriftMethodChoice, type ThresholdMode } from "../vocabulary/drift.js";

const MODES = ["auto", "exact", "sketch"] as const;
const FORMATS = ["text", "json", "html"] as const;
/** `--mode auto` keeps exact values up to this many per feature, then sketches. */
const AUTO_EXACT_LIMIT = 100_000;
const PARQUET_CHUNK_ROWS = 50_000;

/** Bad input: reported on stderr, exit code 2. */
class DriftInputError extends Error {}

interface DriftOptions {
  reference: string;
  current: string;
  features?: string;
  types?: string;
  prediction?: string;
  method: DriftMethodChoice;
  mode: (typeof MODES)[number];
  format: (typeof FORMATS)[number];
  thresholdMode: ThresholdMode;
  correction: Correction;
  driftShare: string;
  out?: string;
}

type Row = Record<string, unknown>;
interface Located {
  row: Row;
  line: number;
}

function formatOf(path: string): "csv" | "jsonl" | "parquet" {
  const ext = extname(path).toLowerCase();
  if (ext === ".csv" || ext === ".tsv" || ext === ".txt") return "csv";
  if (ext === ".jsonl" || ext === ".ndjson" || ext === ".json") return "jsonl";
  if (ext === ".parquet") return "parquet";
  throw new DriftInputError(`${path}: cannot tell the format from "${ext || "no extension"}"; use .csv, .jsonl (.ndjson) or .parquet`);
}

async function* csvRows(path: string): AsyncGenerator<Located> {
  const { parse } = await import("csv-parse");
  const parser = createReadStream(path).pipe(
    parse({ columns: true, info: true, skip_empty_lines: true, delimiter: extname(path).toLowerCase() === ".tsv" ? "\t" : ",", bom: true }),
  );
  try {
    for await (const item of parser as AsyncIterable<{ record: Row; info: { lines: number } }>) yield { row: item.record, line: item.info.lines };
  } catch (err) {
    const e = err as Error & { lines?: number; column?: string | number };
    const where = e.lines !== undefined ? ` line ${e.lines}` : "";
    throw new DriftInputError(`${path}${where}: ${e.message.replace(/^Invalid Record Length: /, "")}`);
  }
}

// A .json file may be one array of objects (like vega-datasets' files) instead of JSON Lines.
async function* jsonArrayRows(path: string): AsyncGenerator<Located> {
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
    yield { row: row as Row, line: i + 1 };
  }
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

async function* jsonlRows(path: string): AsyncGenerator<Located> {
  if (extname(path).toLowerCase() === ".json" && (await startsWithBracket(path))) {
    yield* jsonArrayRows(path);
    return;
  }
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let line = 0;
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
    yield { row: value as Row, line };
  }
}

async function* parquetRows(path: string): AsyncGenerator<Located> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } = await import("hyparquet");
  let file;
  let rows: number;
  try {
    file = await asyncBufferFromFile(path);
    rows = Number((await parquetMetadataAsync(file)).num_rows);
  } catch (err) {
    throw new DriftInputError(`${path}: not a readable Parquet file (${(err as Error).message})`);
  }
  // Read in row chunks so a large file never sits in memory as objects all at once.
  for (let start = 0; start < rows; start += PARQUET_CHUNK_ROWS) {
    const chunk = await parquetReadObjects({ file, rowStart: start, rowEnd: Math.min(rows, start + PARQUET_CHUNK_ROWS) });
    for (let i = 0; i < chunk.length; i++) yield { row: chunk[i] as Row, line: start + i + 1 };
  }
}

function readRows(path: string): AsyncGenerator<Located> {
  const format = formatOf(path);
  return format === "csv" ? csvRows(path) : format === "jsonl" ? jsonlRows(path) : parquetRows(path);
}

interface Survey {
  columns: string[];
  rows: number;
  numeric: Map<string, boolean>;
}

/** First pass: the columns, the row count, and which columns hold only numbers. */
async function survey(path: string, classifyNumeric: (v: unknown) => { kind: string }): Promise<Survey> {
  const columns: string[] = [];
  const seen = new Set<string>();
  const numeric = new Map<string, boolean>();
  let rows = 0;
  for await (const { row } of readRows(path)) {
    rows++;
    for (const key of Object.keys(row)) {
      if (!seen.has(key)) {
        seen.add(key);
        columns.push(key);
        numeric.set(key, true);
      }
      if (numeric.get(key) && classifyNumeric(row[key]).kind === "invalid") numeric.set(key, false);
    }
  }
  if (rows === 0) throw new DriftInputError(`${path}: no data rows`);
  return { columns, rows, numeric };
}

function parseList(text: string | undefined): string[] | undefined {
  return text
    ?.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

function parseTypes(text: string | undefined): Map<string, "numeric" | "categorical"> {
  const types = new Map<string, "numeric" | "categorical">();
  for (const item of parseList(text) ?? []) {
    const [name, type] = item.split("=").map((s) => s.trim());
    if (!name || (type !== "numeric" && type !== "categorical")) {
      throw new DriftInputError(`--types: "${item}" should be name=numeric or name=categorical`);
    }
    types.set(name, type);
  }
  return types;
}

async function runDrift(options: DriftOptions): Promise<number> {
  const monitoring = await import("../monitoring/index.js");
  for (const [flag, path] of [
    ["--reference", options.reference],
    ["--current", options.current],
  ] as const) {
    formatOf(path);
    await access(path).catch(() => {
      throw new DriftInputError(`${flag} ${path}: file not found or not readable`);
    });
  }
  const driftShareThreshold = Number(options.driftShare);
  if (!(driftShareThreshold > 0 && driftShareThreshold <= 1)) throw new DriftInputError(`--drift-share must be in (0, 1], got "${options.driftShare}"`);
  if (options.correction !== "none" && options.thresholdMode !== "fixed") {
    throw new DriftInputError(`--correction ${options.correction} adjusts fixed p-value thresholds: add --threshold-mode fixed`);
  }
  const [ref, cur] = await Promise.all([survey(options.reference, monitoring.classifyNumeric), survey(options.current, monitoring.classifyNumeric)]);
  const shared = ref.columns.filter((c) => cur.columns.includes(c));
  const requested = parseList(options.features);
  const predictions = parseList(options.prediction) ?? [];
  for (const name of [...(requested ?? []), ...predictions]) {
    if (!ref.columns.includes(name)) throw new DriftInputError(`${options.reference}: has no column "${name}" (columns: ${ref.columns.join(", ")})`);
    if (!cur.columns.includes(name)) throw new DriftInputError(`${options.current}: has no column "${name}" (columns: ${cur.columns.join(", ")})`);
  }
  const names = requested ?? shared.filter((c) => !predictions.includes(c));
  if (names.length === 0 && predictions.length === 0) {
    throw new DriftInputError(
      `${options.reference} and ${options.current} have no column in common (reference: ${ref.columns.join(", ")}; current: ${cur.columns.join(", ")})`,
    );
  }
  const declared = parseTypes(options.types);
  for (const name of declared.keys()) {
    if (!shared.includes(name)) throw new DriftInputError(`--types: "${name}" is not a column of both files`);
  }
  const schema = [...names, ...predictions].map((name) => ({
    name,
    type: declared.get(name) ?? (ref.numeric.get(name) && cur.numeric.get(name) ? ("numeric" as const) : ("categorical" as const)),
  }));
  const exactLimit = options.mode === "exact" ? Infinity : options.mode === "sketch" ? 0 : AUTO_EXACT_LIMIT;
  const numericDeclared = schema.filter((f) => f.type === "numeric" && declared.has(f.name)).map((f) => f.name);

  // Second pass: profile; a column declared numeric must hold numbers.
  const profileFile = async (path: string): Promise<InstanceType<typeof monitoring.DatasetProfile>> => {
    const profile = new monitoring.DatasetProfile(schema, { exactLimit });
    for await (const { row, line } of readRows(path)) {
      for (const name of numericDeclared) {
        if (monitoring.classifyNumeric(row[name]).kind === "invalid") {
          throw new DriftInputError(`${path} line ${line}, column "${name}": ${JSON.stringify(row[name])} is not a number (--types says numeric)`);
        }
      }
      profile.addRow(row);
    }
    return profile;
  };
  const reference = await profileFile(options.reference);
  const current = await profileFile(options.current);
  // Calibrated: a permutation test of the two files (seeded), so random halves of one data set are not drift.
  const calibration =
    options.thresholdMode === "calibrated" ? monitoring.permutationCalibration(reference, current, { profileOptions: { exactLimit } }) : undefined;
  let report;
  try {
    report = monitoring.compare(reference, current, {
      method: options.method,
      thresholdMode: options.thresholdMode,
      ...(calibration ? { calibration } : {}),
      correction: options.correction,
      driftShareThreshold,
      features: names,
      predictionFeatures: predictions,
    });
  } catch (err) {
    throw new DriftInputError((err as Error).message);
  }
  const context = {
    reference: { label: options.reference, rows: ref.rows },
    current: { label: options.current, rows: cur.rows },
    mode: options.mode === "auto" ? `auto (exact up to ${AUTO_EXACT_LIMIT} values per feature, then sketch)` : options.mode,
    thresholds:
      options.thresholdMode === "calibrated"
        ? `calibrated (${monitoring.DEFAULT_CALIBRATION_LEVEL * 100}% quantile of ${monitoring.DEFAULT_CALIBRATION_RESAMPLES} permutations of both files)`
        : "fixed",
  };
  const output =
    options.format === "json"
      ? JSON.stringify(monitoring.driftReportJSON(report, context), null, 2) + "\n"
      : options.format === "html"
        ? monitoring.renderDriftHtml(report, context)
        : monitoring.renderDriftText(report, context);
  if (options.out) {
    await writeFile(options.out, output);
    process.stderr.write(`wrote ${options.out}: dataset drift ${report.drift ? "YES" : "no"}\n`);
  } else {
    process.stdout.write(output);
  }
  return report.drift ? 1 : 0;
}

export function registerDrift(program: Command): void {
  program
    .command("drift")
    .description("Report data drift between a reference and a current data set (CSV, JSON Lines or Parquet).")
    .requiredOption("--reference <file>", "reference data (e.g. the training data): .csv, .tsv, .jsonl/.ndjson or .parquet")
    .requiredOption("--current <file>", "current data (e.g. recent traffic), same formats")
    .option("--features <names>", "comma-separated columns to compare (default: every column in both files)")
    .option("--types <name=type,...>", "column types instead of inference, e.g. zip=categorical,age=numeric")
    .option("--prediction <names>", "comma-separated model-output columns: reported as prediction drift, not in the drift share")
    .addOption(
      new Option("--method <method>", "drift statistic for every feature; auto picks by type and reference size").choices(DRIFT_METHOD_CHOICES).default("auto"),
    )
    .addOption(
      new Option(
        "--threshold-mode <mode>",
        "calibrated: drift when a statistic exceeds its no-drift quantile from permutations of both files; fixed: Evidently's 0.05 / 0.1",
      )
        .choices(THRESHOLD_MODES)
        .default("calibrated"),
    )
    .addOption(
      new Option("--mode <mode>", `exact values, KLL sketches, or auto (exact up to ${AUTO_EXACT_LIMIT} values per feature)`).choices(MODES).default("auto"),
    )
    .addOption(new Option("--format <format>", "report format").choices(FORMATS).default("text"))
    .addOption(
      new Option("--correction <correction>", "multiple-testing correction across p-value features (with --threshold-mode fixed)")
        .choices(CORRECTIONS)
        .default("none"),
    )
    .option("--drift-share <share>", "dataset drift when at least this share of features drifted", "0.5")
    .option("--out <file>", "write the report here instead of stdout")
    .addHelpText(
      "after",
      `
Exit codes: 0 no dataset drift, 1 dataset drift, 2 bad input (missing file, no common columns,
unparsable values; the message names the file, line and column).

auto method (Evidently's rule): reference ≤ 1000 values → KS (numeric) or chi-squared (categorical
and numerics with ≤ 5 distinct values); larger → Wasserstein normed by the reference std or
Jensen–Shannon distance. Thresholds (default calibrated): a feature drifts when its statistic exceeds
the 99% quantile of 200 random splits of both files pooled (a permutation test), so sampling noise of
high-cardinality columns is not drift; --threshold-mode fixed uses Evidently's p < 0.05 and ≥ 0.1.
See docs/monitoring.md.

Examples:
  ballast drift --reference train.csv --current last-week.csv
  ballast drift --reference ref.jsonl --current cur.jsonl --format html --out drift.html
  ballast drift --reference a.parquet --current b.parquet --method psi --format json`,
    )
    .action(async (options: DriftOptions) => {
      try {
        process.exitCode = await runDrift(options);
      } catch (err) {
        if (!(err instanceof DriftInputError)) throw err;
        process.stderr.write(`ballast drift: ${err.message}\n`);
        process.exitCode = 2;
      }
    });
}
