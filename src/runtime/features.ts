// The feature schema stored with each model version: the exact preprocessing training used, so serving repeats it.

export interface NumericFeature {
  name: string;
  type: "numeric";
  /** Standardisation: (x - mean) / std; missing values are replaced by `mean` (encoded 0). */
  mean: number;
  std: number;
}

export interface CategoricalFeature {
  name: string;
  type: "categorical";
  /** One-hot slots in this order, followed by one slot for unseen or missing values. */
  categories: string[];
}

export type FeatureSpec = NumericFeature | CategoricalFeature;

export class FeatureValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FeatureValueError";
  }
}

export function encodedWidth(features: readonly FeatureSpec[]): number {
  return features.reduce((w, f) => w + (f.type === "numeric" ? 1 : f.categories.length + 1), 0);
}

/** Missing means absent, null or an empty string; those get the feature's default encoding. */
export function isMissing(value: unknown): boolean {
  return value === undefined || value === null || value === "";
}

/** A number from a JSON number or a numeric string; undefined for missing; throws for anything else. */
export function toNumber(value: unknown, where: () => string): number | undefined {
  if (isMissing(value)) return undefined;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new FeatureValueError(`${where()}: ${value} is not a finite number`);
    return value;
  }
  if (typeof value === "string") {
    const n = Number(value.trim());
    if (value.trim() !== "" && Number.isFinite(n)) return n;
  }
  if (typeof value === "boolean") return value ? 1 : 0;
  throw new FeatureValueError(`${where()}: ${JSON.stringify(value)} is not a number`);
}

export function toCategory(value: unknown, where: () => string): string | undefined {
  if (isMissing(value)) return undefined;
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  throw new FeatureValueError(`${where()}: ${JSON.stringify(value)} is not a category (string, number or boolean)`);
}

/**
 * Encodes columns (one array of raw values per feature, in schema order) into a row-major matrix.
 * `describe(feature, row)` names the offending value in errors (e.g. "inputs[2] row 5").
 */
export function encodeColumns(
  features: readonly FeatureSpec[],
  columns: readonly (readonly unknown[])[],
  rows: number,
  describe: (feature: string, row: number) => string = (f, r) => `feature ${f} row ${r}`,
): Float32Array {
  const width = encodedWidth(features);
  const out = new Float32Array(rows * width);
  let offset = 0;
  features.forEach((feature, fi) => {
    const column = columns[fi] ?? [];
    if (feature.type === "numeric") {
      const scale = feature.std > 0 ? 1 / feature.std : 1;
      for (let r = 0; r < rows; r++) {
        const v = toNumber(column[r], () => describe(feature.name, r));
        out[r * width + offset] = v === undefined ? 0 : (v - feature.mean) * scale;
      }
      offset += 1;
    } else {
      const slot = new Map(feature.categories.map((c, i) => [c, i]));
      const unseen = feature.categories.length;
      for (let r = 0; r < rows; r++) {
        const c = toCategory(column[r], () => describe(feature.name, r));
        out[r * width + offset + (c === undefined ? unseen : (slot.get(c) ?? unseen))] = 1;
      }
      offset += feature.categories.length + 1;
    }
  });
  return out;
}
