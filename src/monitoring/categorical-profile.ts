// Profile of one categorical feature: exact counts for up to `maxCategories` values, the rest in `other`.
import { createHash } from "node:crypto";
import { classifyCategory } from "./schema.js";

export const DEFAULT_MAX_CATEGORIES = 100;
/** Name of the bucket that holds values beyond `maxCategories` in reports. */
export const OTHER_CATEGORY = "__other__";
/** Longest category value a profile keeps (UTF-16 code units); longer ones are cut by `boundCategory`. */
export const MAX_CATEGORY_LENGTH = 128;
const HASH_CHARS = 16;

/**
 * A category value as profiles keep it: at most MAX_CATEGORY_LENGTH characters. A longer value becomes its
 * first characters, "…" and 16 hex digits of its SHA-256, so one client's huge values cannot grow a profile
 * (nor the summaries built from it) while distinct long values stay distinct categories.
 */
export function boundCategory(value: string): string {
  if (value.length <= MAX_CATEGORY_LENGTH) return value;
  let keep = MAX_CATEGORY_LENGTH - 1 - HASH_CHARS;
  // Never split a surrogate pair: the cut value must stay well-formed text.
  const last = value.charCodeAt(keep - 1);
  if (last >= 0xd800 && last <= 0xdbff) keep--;
  return `${value.slice(0, keep)}…${createHash("sha256").update(value).digest("hex").slice(0, HASH_CHARS)}`;
}

export interface CategoricalProfileOptions {
  /** Distinct values counted exactly; later new values go to `other` (merges keep the most frequent). */
  maxCategories?: number;
}

export interface CategoricalProfileJSON {
  type: "categorical";
  /** Non-missing, valid cells (sum of `counts` plus `other`). */
  count: number;
  missing: number;
  /** Cells that are neither string, number nor boolean (e.g. objects). */
  invalid: number;
  maxCategories: number;
  counts: Record<string, number>;
  /** Cells whose value did not fit in `counts`. */
  other: number;
}

export class CategoricalProfile {
  readonly type = "categorical" as const;
  readonly maxCategories: number;
  count = 0;
  missing = 0;
  invalid = 0;
  other = 0;
  readonly counts = new Map<string, number>();

  constructor(options: CategoricalProfileOptions = {}) {
    this.maxCategories = options.maxCategories ?? DEFAULT_MAX_CATEGORIES;
    if (!Number.isInteger(this.maxCategories) || this.maxCategories < 1) {
      throw new RangeError(`maxCategories must be a positive integer, got ${this.maxCategories}`);
    }
  }

  add(raw: unknown): void {
    const cell = classifyCategory(raw);
    if (cell.kind === "missing") this.missing++;
    else if (cell.kind === "invalid") this.invalid++;
    else this.addCategory(cell.value);
  }

  addCategory(raw: string, times = 1): void {
    const value = boundCategory(raw);
    this.count += times;
    const seen = this.counts.get(value);
    if (seen !== undefined) this.counts.set(value, seen + times);
    else if (this.counts.size < this.maxCategories) this.counts.set(value, times);
    else this.other += times;
  }

  /** Counts by category, with `OTHER_CATEGORY` when anything overflowed. */
  bucketCounts(): Map<string, number> {
    const out = new Map(this.counts);
    if (this.other > 0) out.set(OTHER_CATEGORY, (out.get(OTHER_CATEGORY) ?? 0) + this.other);
    return out;
  }

  /** A new profile of both inputs' rows; beyond maxCategories the least frequent values fold into `other`. */
  merge(other: CategoricalProfile): CategoricalProfile {
    const out = new CategoricalProfile({ maxCategories: Math.min(this.maxCategories, other.maxCategories) });
    const combined = new Map(this.counts);
    for (const [value, n] of other.counts) combined.set(value, (combined.get(value) ?? 0) + n);
    const ranked = [...combined.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    for (const [value, n] of ranked.slice(0, out.maxCategories)) out.counts.set(value, n);
    out.other = this.other + other.other + ranked.slice(out.maxCategories).reduce((s, [, n]) => s + n, 0);
    out.count = this.count + other.count;
    out.missing = this.missing + other.missing;
    out.invalid = this.invalid + other.invalid;
    return out;
  }

  toJSON(): CategoricalProfileJSON {
    return {
      type: "categorical",
      count: this.count,
      missing: this.missing,
      invalid: this.invalid,
      maxCategories: this.maxCategories,
      counts: Object.fromEntries(this.counts),
      other: this.other,
    };
  }

  static fromJSON(json: CategoricalProfileJSON, where: string): CategoricalProfile {
    const profile = new CategoricalProfile({ maxCategories: json.maxCategories });
    let sum = json.other;
    for (const [raw, n] of Object.entries(json.counts)) {
      // Written before values were bounded (or by another writer): bound them as addCategory would.
      const value = boundCategory(raw);
      profile.counts.set(value, (profile.counts.get(value) ?? 0) + n);
      sum += n;
    }
    if (sum !== json.count) throw new RangeError(`${where}: counts and other add up to ${sum} but count is ${json.count}`);
    profile.count = json.count;
    profile.missing = json.missing;
    profile.invalid = json.invalid;
    profile.other = json.other;
    return profile;
  }
}
