// Profile of one categorical feature: exact counts for up to `maxCategories` named values, and beyond them
// counts in fixed hash buckets, so any two profiles compare and merge over one shared partition of the values.
import { createHash } from "node:crypto";
import { classifyCategory } from "./schema.js";

export const DEFAULT_MAX_CATEGORIES = 100;
/**
 * Values beyond `maxCategories` are counted in this many buckets by a hash of the value: every profile
 * (reference, window, replica) puts a value in the same bucket, so comparisons never pit one profile's
 * named value against another's catch-all. Collisions only merge values, which can lower a distance,
 * never raise it (docs/monitoring.md measures the effect).
 */
export const HASH_BUCKETS = 1024;
/** Label of a hash bucket in reports: `__other__#<bucket>`. */
export const OTHER_CATEGORY = "__other__";
/** Longest category value a profile keeps (UTF-16 code units); longer ones are cut by `boundCategory`. */
export const MAX_CATEGORY_LENGTH = 128;
const HASH_CHARS = 16;
/** Cells `addAll` tallies before adding: bounds the tally's size on columns of unique values. */
const TALLY_CHUNK = 65_536;

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

/** The hash bucket of a (bounded) value: FNV-1a over its UTF-16 code units, stable across processes. */
export function categoryBucket(value: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % HASH_BUCKETS;
}

export function bucketLabel(bucket: number): string {
  return `${OTHER_CATEGORY}#${bucket}`;
}

export interface CategoricalProfileOptions {
  /** Values counted by name; values first seen after that many are counted in hash buckets. */
  maxCategories?: number;
}

export interface CategoricalProfileJSON {
  type: "categorical";
  /** Non-missing, valid cells (sum of `counts` plus the `hashed` buckets). */
  count: number;
  missing: number;
  /** Cells that are neither string, number nor boolean (e.g. objects). */
  invalid: number;
  maxCategories: number;
  counts: Record<string, number>;
  /** Cells of values not counted by name, by hash bucket (`categoryBucket`); empty buckets left out. */
  hashed?: Record<string, number>;
  /** Written by profiles before hash buckets: a catch-all that cannot be compared; only 0 is accepted. */
  other?: number;
}

/**
 * Invariant: every occurrence of a value sits in one place — under its name, or in its bucket. A new value
 * is named only while its bucket is empty (else earlier occurrences may hide there), and a merge hashes a
 * name the other side may hold in its bucket; a named value's bucket may hold other values.
 */
export class CategoricalProfile {
  readonly type = "categorical" as const;
  readonly maxCategories: number;
  count = 0;
  missing = 0;
  invalid = 0;
  readonly counts = new Map<string, number>();
  /** Bucket → cells of values not counted by name. */
  readonly hashed = new Map<number, number>();

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

  /**
   * Adds a column of raw cells: the same profile as `add` on each in order. Cells are tallied per chunk first
   * (a Map keeps first-seen order, and a value's fate is decided at its first occurrence), so the per-value
   * work is one Map lookup instead of classifying, bounding and hashing every cell.
   */
  addAll(values: ArrayLike<unknown>): void {
    const tally = new Map<unknown, number>();
    for (let start = 0; start < values.length; start += TALLY_CHUNK) {
      const end = Math.min(values.length, start + TALLY_CHUNK);
      for (let i = start; i < end; i++) {
        const cell = values[i];
        tally.set(cell, (tally.get(cell) ?? 0) + 1);
      }
      for (const [raw, times] of tally) {
        const cell = classifyCategory(raw);
        if (cell.kind === "missing") this.missing += times;
        else if (cell.kind === "invalid") this.invalid += times;
        else this.addCategory(cell.value, times);
      }
      tally.clear();
    }
  }

  addCategory(raw: string, times = 1): void {
    const value = boundCategory(raw);
    this.count += times;
    const seen = this.counts.get(value);
    if (seen !== undefined) {
      this.counts.set(value, seen + times);
      return;
    }
    const bucket = categoryBucket(value);
    // A value already in its bucket (or sharing it with hashed values) stays hashed: the invariant above.
    if (this.counts.size < this.maxCategories && !this.hashed.has(bucket)) this.counts.set(value, times);
    else this.hashed.set(bucket, (this.hashed.get(bucket) ?? 0) + times);
  }

  /** Adds cells straight to a hash bucket (resampling draws buckets, not values). */
  addToBucket(bucket: number, times = 1): void {
    this.count += times;
    this.hashed.set(bucket, (this.hashed.get(bucket) ?? 0) + times);
  }

  /** Cells in hash buckets (values not counted by name). */
  get hashedCount(): number {
    let n = 0;
    for (const v of this.hashed.values()) n += v;
    return n;
  }

  /** Occurrences of `value` this profile can vouch for exactly: its named count, 0 if provably absent, else undefined. */
  exactCount(value: string): number | undefined {
    const named = this.counts.get(value);
    if (named !== undefined) return named;
    return this.hashed.has(categoryBucket(value)) ? undefined : 0;
  }

  /** A new profile of both inputs' rows; the same partition rules as `add`, least frequent names hashed first. */
  merge(other: CategoricalProfile): CategoricalProfile {
    const out = new CategoricalProfile({ maxCategories: Math.min(this.maxCategories, other.maxCategories) });
    for (const side of [this, other]) for (const [bucket, n] of side.hashed) out.addToBucket(bucket, n);
    const combined = new Map<string, number>();
    for (const side of [this, other]) for (const [value, n] of side.counts) combined.set(value, (combined.get(value) ?? 0) + n);
    const ranked = [...combined.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    // A value named on one side may hide in the other side's bucket: then it can only be hashed.
    const hidden = new Set(ranked.filter(([value]) => this.exactCount(value) === undefined || other.exactCount(value) === undefined).map(([value]) => value));
    for (const [value, n] of ranked) {
      if (!hidden.has(value) && out.counts.size < out.maxCategories) out.counts.set(value, n);
      else out.addToBucket(categoryBucket(value), n);
    }
    out.count = this.count + other.count;
    out.missing = this.missing + other.missing;
    out.invalid = this.invalid + other.invalid;
    return out;
  }

  toJSON(): CategoricalProfileJSON {
    const json: CategoricalProfileJSON = {
      type: "categorical",
      count: this.count,
      missing: this.missing,
      invalid: this.invalid,
      maxCategories: this.maxCategories,
      counts: Object.fromEntries(this.counts),
    };
    if (this.hashed.size > 0) json.hashed = Object.fromEntries([...this.hashed].sort((a, b) => a[0] - b[0]).map(([b, n]) => [String(b), n]));
    return json;
  }

  static fromJSON(json: CategoricalProfileJSON, where: string): CategoricalProfile {
    if ((json.other ?? 0) !== 0) {
      throw new RangeError(`${where}.other: ${json.other} values in an uncomparable catch-all (written by an older ballast); profile the data again`);
    }
    const profile = new CategoricalProfile({ maxCategories: json.maxCategories });
    let sum = 0;
    for (const [key, n] of Object.entries(json.hashed ?? {})) {
      const bucket = Number(key);
      if (!Number.isInteger(bucket) || bucket < 0 || bucket >= HASH_BUCKETS || String(bucket) !== key) {
        throw new RangeError(`${where}.hashed: bucket "${key}" is not an integer in [0, ${HASH_BUCKETS})`);
      }
      if (n > 0) profile.hashed.set(bucket, n);
      sum += n;
    }
    for (const [raw, n] of Object.entries(json.counts)) {
      // Written before values were bounded (or by another writer): bound them as addCategory would.
      const value = boundCategory(raw);
      profile.counts.set(value, (profile.counts.get(value) ?? 0) + n);
      sum += n;
    }
    if (sum !== json.count) throw new RangeError(`${where}: counts and hashed add up to ${sum} but count is ${json.count}`);
    profile.count = json.count;
    profile.missing = json.missing;
    profile.invalid = json.invalid;
    return profile;
  }
}

export interface AlignedCounts {
  labels: string[];
  reference: number[];
  current: number[];
}

/**
 * Both profiles' counts over one partition: a value is its own cell where both profiles know its exact count,
 * otherwise it joins its hash bucket on both sides. Exact whenever both profiles named every value.
 */
export function alignCategoricalCounts(reference: CategoricalProfile, current: CategoricalProfile): AlignedCounts {
  const cells = new Map<string, { reference: number; current: number }>();
  const cell = (label: string) => {
    let c = cells.get(label);
    if (!c) cells.set(label, (c = { reference: 0, current: 0 }));
    return c;
  };
  for (const [side, mine, theirs] of [
    ["reference", reference, current],
    ["current", current, reference],
  ] as const) {
    for (const [value, n] of mine.counts) {
      const own = theirs.exactCount(value) !== undefined;
      cell(own ? value : bucketLabel(categoryBucket(value)))[side] += n;
    }
  }
  const buckets = [...new Set([...reference.hashed.keys(), ...current.hashed.keys()])].sort((a, b) => a - b);
  for (const bucket of buckets) {
    const c = cell(bucketLabel(bucket));
    c.reference += reference.hashed.get(bucket) ?? 0;
    c.current += current.hashed.get(bucket) ?? 0;
  }
  const labels = [...cells.keys()];
  return { labels, reference: labels.map((l) => cells.get(l)!.reference), current: labels.map((l) => cells.get(l)!.current) };
}
