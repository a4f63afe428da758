// Feature schema of a profiled dataset, and the shared classification of raw cell values.

export type FeatureType = "numeric" | "categorical";

export interface FeatureSchema {
  name: string;
  type: FeatureType;
}

/** A serialized profile that does not parse; `message` names the field, e.g. `features.age.sketch.items`. */
export class ProfileFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProfileFormatError";
  }
}

/** Missing means absent, null or an empty string (what CSV and JSON give for "no value"). */
export function isMissingValue(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === "string" && value.trim() === "");
}

export type NumericCell = { kind: "missing" } | { kind: "invalid" } | { kind: "number"; value: number };

/** Numbers, numeric strings ("1e3", "NaN", "-Infinity") and booleans are numbers; anything else is invalid. */
export function classifyNumeric(value: unknown): NumericCell {
  if (isMissingValue(value)) return { kind: "missing" };
  if (typeof value === "number") return { kind: "number", value };
  if (typeof value === "boolean") return { kind: "number", value: value ? 1 : 0 };
  if (typeof value === "bigint") return { kind: "number", value: Number(value) };
  if (typeof value === "string") {
    const text = value.trim();
    const parsed = Number(text);
    if (!Number.isNaN(parsed)) return { kind: "number", value: parsed };
    if (/^[+-]?nan$/i.test(text)) return { kind: "number", value: Number.NaN };
    if (/^[+-]?inf(inity)?$/i.test(text)) return { kind: "number", value: text.startsWith("-") ? -Infinity : Infinity };
  }
  return { kind: "invalid" };
}

/** Strings, numbers and booleans are categories (numbers by their JavaScript spelling); objects are invalid. */
export function classifyCategory(value: unknown): { kind: "missing" } | { kind: "invalid" } | { kind: "category"; value: string } {
  if (isMissingValue(value)) return { kind: "missing" };
  if (typeof value === "string") return { kind: "category", value };
  if (typeof value === "number" || typeof value === "boolean" || typeof value === "bigint") {
    return { kind: "category", value: String(value) };
  }
  return { kind: "invalid" };
}

/**
 * Infers each column's type: numeric when every non-missing value reads as a number, else categorical.
 * A column with no values at all is numeric (it profiles as all-missing either way).
 */
export function inferFeatureSchema(rows: Iterable<Record<string, unknown>>, columns: readonly string[]): FeatureSchema[] {
  const numeric = new Map(columns.map((c) => [c, true]));
  for (const row of rows) {
    for (const column of columns) {
      if (!numeric.get(column)) continue;
      if (classifyNumeric(row[column]).kind === "invalid") numeric.set(column, false);
    }
  }
  return columns.map((name) => ({ name, type: numeric.get(name) ? "numeric" : "categorical" }));
}
