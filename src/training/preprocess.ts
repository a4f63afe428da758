// Fits the feature schema (scaling, categories) and label encoding from training rows.
import { FeatureSchema } from "../api/v1alpha1.js";
import { isMissing, toCategory, toNumber, type FeatureSpec } from "../runtime/features.js";
import { DataError, type Table } from "./data.js";

export type Task = "classification" | "regression";

/** Categorical columns keep their most frequent values; the rest share the unseen slot. */
export const MAX_CATEGORIES = 50;

export interface LabelEncoding {
  task: Task;
  name: string;
  classes?: string[];
  target?: { mean: number; std: number };
}

/**
 * The names a ModelDeployment accepts for spec.monitoring.features[].name and labelField (the CRD's pattern,
 * read from the one schema source): a model trained on another column name could never be monitored.
 */
export const FEATURE_NAME_PATTERN = FeatureSchema.properties.name.pattern!;
const featureName = new RegExp(FEATURE_NAME_PATTERN);

/** Refuses a column the monitoring chain cannot carry, naming it and saying what to do. */
export function checkColumnName(name: string, role: "feature" | "label"): void {
  if (featureName.test(name)) return;
  const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 63)}…` : name);
  const fix = role === "feature" ? "rename the column, or leave it out with --features" : "rename the column";
  throw new DataError(
    `${role} column ${shown} is not a valid ModelDeployment feature name: names must match ${FEATURE_NAME_PATTERN} ` +
      `(a letter or _ first, then letters, digits, _ . -, at most 128 characters); ${fix}`,
  );
}

/** The feature columns to use: the given list (checked), else every column except the label. */
export function chooseFeatures(table: Table, label: string, requested?: readonly string[]): string[] {
  if (!table.columns.includes(label)) {
    throw new DataError(`label column "${label}" is not in the data (columns: ${table.columns.join(", ")})`);
  }
  checkColumnName(label, "label");
  if (requested && requested.length > 0) {
    const missing = requested.filter((f) => !table.columns.includes(f));
    if (missing.length > 0) throw new DataError(`feature column(s) ${missing.join(", ")} not in the data (columns: ${table.columns.join(", ")})`);
    if (requested.includes(label)) throw new DataError(`"${label}" is the label; it cannot also be a feature`);
    for (const f of requested) checkColumnName(f, "feature");
    return [...requested];
  }
  const features = table.columns.filter((c) => c !== label);
  for (const f of features) checkColumnName(f, "feature");
  return features;
}

/** Numeric when every present value parses as a finite number; otherwise categorical. */
export function fitFeatures(table: Table, names: readonly string[]): FeatureSpec[] {
  return names.map((name) => {
    const present = table.rows.map((r) => r[name]).filter((v) => !isMissing(v));
    if (present.length === 0) throw new DataError(`feature "${name}" has no values in ${table.rows.length} rows`);
    const numbers = present.map((v) => (typeof v === "number" ? v : typeof v === "string" ? Number(v.trim()) : NaN));
    if (numbers.every((n) => Number.isFinite(n))) {
      const mean = numbers.reduce((a, b) => a + b, 0) / numbers.length;
      const variance = numbers.reduce((a, b) => a + (b - mean) ** 2, 0) / numbers.length;
      return { name, type: "numeric", mean, std: Math.sqrt(variance) };
    }
    const counts = new Map<string, number>();
    present.forEach((v, i) => {
      const c = toCategory(v, () => `feature "${name}" value ${i}`)!;
      counts.set(c, (counts.get(c) ?? 0) + 1);
    });
    if (counts.size > MAX_CATEGORIES && counts.size > present.length / 2) {
      throw new DataError(
        `feature "${name}" looks like an identifier (${counts.size} distinct values in ${present.length} rows); ` + `choose columns with --features`,
      );
    }
    const categories = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, MAX_CATEGORIES)
      .map(([c]) => c)
      .sort();
    return { name, type: "categorical", categories };
  });
}

export function fitLabel(table: Table, name: string, task: Task): LabelEncoding {
  if (task === "classification") {
    const classes = [...new Set(labelValues(table, name).map((v, i) => toCategory(v, () => `label "${name}" row ${i}`)!))].sort();
    if (classes.length < 2) throw new DataError(`label "${name}" has ${classes.length} class(es); classification needs at least 2`);
    return { task, name, classes };
  }
  const ys = labelValues(table, name).map((v, i) => toNumber(v, () => `label "${name}" row ${i}`)!);
  const mean = ys.reduce((a, b) => a + b, 0) / ys.length;
  const std = Math.sqrt(ys.reduce((a, b) => a + (b - mean) ** 2, 0) / ys.length);
  return { task, name, target: { mean, std: std > 0 ? std : 1 } };
}

function labelValues(table: Table, name: string): unknown[] {
  const values = table.rows.map((r) => r[name]).filter((v) => !isMissing(v));
  if (values.length === 0) throw new DataError(`label "${name}" has no values`);
  return values;
}

/** Keeps rows whose label is present: unlabelled rows cannot train. */
export function labelledRows(table: Table, label: string): Record<string, unknown>[] {
  return table.rows.filter((r) => !isMissing(r[label]));
}

/** Encodes labels as class indices (classification) or standardised targets (regression). */
export function encodeLabels(rows: readonly Record<string, unknown>[], encoding: LabelEncoding): Float32Array {
  const out = new Float32Array(rows.length);
  if (encoding.task === "classification") {
    const index = new Map(encoding.classes!.map((c, i) => [c, i]));
    rows.forEach((r, i) => {
      const c = toCategory(r[encoding.name], () => `label "${encoding.name}" row ${i}`)!;
      const k = index.get(c);
      if (k === undefined) {
        throw new DataError(`label "${encoding.name}" row ${i}: class "${c}" is not one of the model's classes (${encoding.classes!.join(", ")})`);
      }
      out[i] = k;
    });
  } else {
    const { mean, std } = encoding.target!;
    rows.forEach((r, i) => {
      out[i] = (toNumber(r[encoding.name], () => `label "${encoding.name}" row ${i}`)! - mean) / std;
    });
  }
  return out;
}
