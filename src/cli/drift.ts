// `ballast drift`: an offline drift report between two CSV / JSON Lines / Parquet files.
// Exit 0 = no drift, 1 = drift, 2 = bad input (the message names the file, line and column).
import { access, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { Command, Option } from "commander";

import type { DatasetProfile, FeatureSchema } from "../monitoring/index.js";
import { CORRECTIONS, DRIFT_METHOD_CHOICES, THRESHOLD_MODES, type Correction, type DriftMethodChoice, type ThresholdMode } from "../vocabulary/drift.js";
import { DriftInputError, formatOf, readColumns, type ColumnTable } from "./drift-columns.js";

const MODES = ["auto", "exact", "sketch"] as const;
const FORMATS = ["text", "json", "html"] as const;
/** `--mode auto` keeps exact values up to this many per feature, then sketches. */
const AUTO_EXACT_LIMIT = 100_000;
/**
 * `--threads auto` profiles on worker threads from this many numeric values in a file (rows × numeric columns):
 * measured on 2 busy cores, two threads first beat one at 10 M values; below, starting the workers and copying
 * the columns cost more than they save (docs/benchmarks.md).
 */
const PARALLEL_MIN_VALUES = 10_000_000;

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
  threads: string;
  out?: string;
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

function parseThreads(text: string): number | "auto" {
  if (text === "auto") return "auto";
  const threads = Number(text);
  if (!Number.isInteger(threads) || threads < 1) throw new DriftInputError(`--threads must be "auto" or a whole number ≥ 1, got "${text}"`);
  return threads;
}

/** A declared-numeric column's first cell that is not a number, in file order (then schema order). */
function checkDeclaredNumbers(table: ColumnTable, names: readonly string[]): void {
  let first: { name: string; line: number; value: unknown } | undefined;
  for (const name of names) {
    const column = table.values.get(name);
    const invalid = column?.kind === "numbers" ? column.firstInvalid : undefined;
    if (invalid && (!first || invalid.line < first.line)) first = { name, ...invalid };
  }
  if (first) {
    throw new DriftInputError(
      `${table.path} line ${first.line}, column "${first.name}": ${JSON.stringify(first.value)} is not a number (--types says numeric)`,
    );
  }
}

/**
 * The schema's columns of one file as `fromColumns` takes them, and each numeric column's blanks. A column
 * profiled as categorical that the file held as numbers (the other file or a later cell made it categorical)
 * is read again as text.
 */
async function profileInput(
  table: ColumnTable,
  schema: readonly FeatureSchema[],
): Promise<{ columns: Record<string, ArrayLike<unknown>>; blanks: Map<string, number> }> {
  const columns: Record<string, ArrayLike<unknown>> = {};
  const blanks = new Map<string, number>();
  const reread = new Set<string>();
  for (const { name, type } of schema) {
    const column = table.values.get(name)!;
    if (column.kind === "cells") columns[name] = column.values;
    else if (column.kind === "unread" || type === "categorical") reread.add(name);
    else {
      columns[name] = column.values;
      blanks.set(name, column.blanks);
    }
  }
  if (reread.size > 0) {
    const text = await readColumns(table.path, { only: reread, declared: new Map([...reread].map((name) => [name, "categorical" as const])) });
    for (const name of reread) columns[name] = (text.values.get(name) as { values: unknown[] }).values;
  }
  return { columns, blanks };
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
  const threads = parseThreads(options.threads);
  const declared = parseTypes(options.types);
  const requested = parseList(options.features);
  const predictions = parseList(options.prediction) ?? [];
  const readOptions = { declared, ...(requested ? { only: new Set([...requested, ...predictions]) } : {}) };
  const ref = await readColumns(options.reference, readOptions);
  const cur = await readColumns(options.current, readOptions);
  const shared = ref.columns.filter((c) => cur.columns.includes(c));
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
  for (const name of declared.keys()) {
    if (!shared.includes(name)) throw new DriftInputError(`--types: "${name}" is not a column of both files`);
  }
  const readAsNumbers = (table: ColumnTable, name: string) => table.values.get(name)?.kind === "numbers";
  const schema: FeatureSchema[] = [...names, ...predictions].map((name) => ({
    name,
    type: declared.get(name) ?? (readAsNumbers(ref, name) && readAsNumbers(cur, name) ? "numeric" : "categorical"),
  }));
  const exactLimit = options.mode === "exact" ? Infinity : options.mode === "sketch" ? 0 : AUTO_EXACT_LIMIT;
  const numericDeclared = schema.filter((f) => f.type === "numeric" && declared.has(f.name)).map((f) => f.name);
  checkDeclaredNumbers(ref, numericDeclared);
  checkDeclaredNumbers(cur, numericDeclared);

  const numericCount = schema.filter((f) => f.type === "numeric").length;
  const profile = async (table: ColumnTable): Promise<DatasetProfile> => {
    const { columns, blanks } = await profileInput(table, schema);
    const workers = threads === "auto" ? (table.rows * numericCount >= PARALLEL_MIN_VALUES ? availableParallelism() : 1) : threads;
    const result = await monitoring.profileColumnsInParallel(schema, columns, { exactLimit, threads: workers });
    // A blank cell was read as NaN, which the profile counted as non-finite: it is missing.
    for (const [name, count] of blanks) {
      const feature = result.feature(name)!;
      feature.missing += count;
      if (feature.type === "numeric") feature.nonFinite -= count;
    }
    return result;
  };
  const [reference, current] = await Promise.all([profile(ref), profile(cur)]);
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
    .option(
      "--threads <n>",
      `worker threads for profiling: a number, or auto (the cores available, from ${PARALLEL_MIN_VALUES / 1e6} M numeric values in a file)`,
      "auto",
    )
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
