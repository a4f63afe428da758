// Profile of one numeric feature: counts, moments, and the distribution (exact values or a KLL sketch).
import {
  DEFAULT_KLL_K,
  FLOAT32_MAX,
  KllSketch,
  decodeFloat64,
  encodeFloats,
  kllRankErrorBound,
  type KllSketchJSON,
  type WeightedPoints,
} from "./kll-sketch.js";
import { classifyNumeric } from "./schema.js";

/** Exact values are kept while a profile holds at most this many (then it switches to the sketch). */
export const DEFAULT_EXACT_LIMIT = 1000;
/** Values per block of `addNumbers`' moments: small enough to stay in cache for its second pass. */
const MOMENT_BLOCK = 4096;

export interface NumericProfileOptions {
  /** Keep exact values while count ≤ exactLimit; `Infinity` = always exact, 0 = always sketch. */
  exactLimit?: number;
  /** KLL parameter k (rank error ≤ kllRankErrorBound(k): 0.006 at the default 400). */
  sketchK?: number;
}

export interface NumericProfileJSON {
  type: "numeric";
  /** Finite values profiled. */
  count: number;
  /** Absent, null or empty cells. */
  missing: number;
  /** NaN, +Infinity or -Infinity cells (kept out of the distribution). */
  nonFinite: number;
  /** Cells that are not numbers at all (e.g. "abc"). */
  invalid: number;
  min: number | null;
  max: number | null;
  mean: number;
  /** Sum of squared deviations from the mean (Welford / Chan), so std merges exactly. */
  m2: number;
  /** null means unlimited (always exact). */
  exactLimit: number | null;
  sketchK: number;
  /** Exact mode: base64 little-endian float64 values, in arrival order. */
  values?: string;
  /** Sketch mode. */
  sketch?: KllSketchJSON;
}

export class NumericProfile {
  readonly type = "numeric" as const;
  readonly exactLimit: number;
  readonly sketchK: number;
  count = 0;
  missing = 0;
  nonFinite = 0;
  invalid = 0;
  min = Infinity;
  max = -Infinity;
  mean = 0;
  m2 = 0;
  private exact: Float64Array | undefined;
  private sketch: KllSketch | undefined;
  private pointsCache: WeightedPoints | undefined;

  constructor(options: NumericProfileOptions = {}) {
    this.exactLimit = options.exactLimit ?? DEFAULT_EXACT_LIMIT;
    this.sketchK = options.sketchK ?? DEFAULT_KLL_K;
    if (!(this.exactLimit >= 0)) throw new RangeError(`exactLimit must be ≥ 0, got ${this.exactLimit}`);
    if (this.exactLimit > 0) this.exact = new Float64Array(Math.min(64, Math.max(1, this.exactLimit)));
    else this.sketch = new KllSketch(this.sketchK);
  }

  get mode(): "exact" | "sketch" {
    return this.sketch ? "sketch" : "exact";
  }

  /** Population standard deviation (ddof 0), 0 for fewer than two values. */
  get std(): number {
    return this.count > 0 ? Math.sqrt(this.m2 / this.count) : 0;
  }

  /** Rank error of the distribution: 0 while every value is held, else the KLL bound. */
  get rankErrorBound(): number {
    return this.sketch && !this.sketch.isExact ? kllRankErrorBound(this.sketchK) : 0;
  }

  /** Adds one raw cell (number, numeric string, null, ...). */
  add(raw: unknown): void {
    const cell = classifyNumeric(raw);
    if (cell.kind === "missing") this.missing++;
    else if (cell.kind === "invalid") this.invalid++;
    else this.addNumber(cell.value);
  }

  addNumber(value: number): void {
    if (!Number.isFinite(value)) {
      this.nonFinite++;
      return;
    }
    this.count++;
    const delta = value - this.mean;
    this.mean += delta / this.count;
    this.m2 += delta * (value - this.mean);
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    this.pointsCache = undefined;
    if (this.exact) {
      if (this.count > this.exactLimit) {
        this.switchToSketch();
        this.sketch!.update(value);
        return;
      }
      if (this.count > this.exact.length) {
        const grown = new Float64Array(Math.min(this.exact.length * 2, Math.max(this.exactLimit, this.count)));
        grown.set(this.exact);
        this.exact = grown;
      }
      this.exact[this.count - 1] = value;
    } else {
      this.sketch!.update(value);
    }
  }

  /**
   * Adds a column of numbers: the profile `addNumber` on each in order gives, except that the moments are
   * summed per block and merged (Chan et al.), which may differ from one-by-one Welford in the last bits. Once
   * the profile sketches, the values go to the sketch in bulk: the ingest path of column batches.
   */
  addNumbers(values: Float64Array): void {
    let i = 0;
    while (i < values.length && this.exact) this.addNumber(values[i++]!);
    if (i === values.length) return;
    let finite = values.subarray(i);
    let min = Infinity;
    let max = -Infinity;
    let allFinite = true;
    for (let j = 0; j < finite.length; j++) {
      const v = finite[j]!;
      if (v < min) min = v;
      if (v > max) max = v;
      if (v - v !== 0) allFinite = false;
    }
    if (!allFinite) {
      const kept = finite.filter((v) => Number.isFinite(v));
      this.nonFinite += finite.length - kept.length;
      finite = kept;
      min = Infinity;
      max = -Infinity;
      for (let j = 0; j < finite.length; j++) {
        if (finite[j]! < min) min = finite[j]!;
        if (finite[j]! > max) max = finite[j]!;
      }
    }
    if (finite.length === 0) return;
    for (let start = 0; start < finite.length; start += MOMENT_BLOCK) this.mergeMoments(finite, start, Math.min(finite.length, start + MOMENT_BLOCK));
    if (min < this.min) this.min = min;
    if (max > this.max) this.max = max;
    this.sketch!.updateAll(finite, 0, finite.length, min >= -FLOAT32_MAX && max <= FLOAT32_MAX);
    this.pointsCache = undefined;
  }

  // Mean and m2 of values[from, to) (two passes over a block in cache), merged into the running ones.
  private mergeMoments(values: Float64Array, from: number, to: number): void {
    let sum = 0;
    for (let i = from; i < to; i++) sum += values[i]!;
    const n = to - from;
    const blockMean = sum / n;
    let m2 = 0;
    for (let i = from; i < to; i++) {
      const d = values[i]! - blockMean;
      m2 += d * d;
    }
    const total = this.count + n;
    const delta = blockMean - this.mean;
    this.mean += (delta * n) / total;
    this.m2 += m2 + (delta * delta * this.count * n) / total;
    this.count = total;
  }

  private switchToSketch(): void {
    const sketch = new KllSketch(this.sketchK);
    const held = this.exact!.subarray(0, this.count - 1);
    for (const v of held) sketch.update(v);
    this.sketch = sketch;
    this.exact = undefined;
  }

  /** Exact values (a copy, arrival order), or undefined in sketch mode. */
  exactValues(): Float64Array | undefined {
    return this.exact ? this.exact.slice(0, this.count) : undefined;
  }

  /** The distribution as sorted points with cumulative weights (exact: weight 1 each). */
  points(): WeightedPoints {
    if (this.pointsCache) return this.pointsCache;
    if (this.sketch) {
      this.pointsCache = this.sketch.weightedPoints();
    } else {
      const values = this.exact!.slice(0, this.count).sort();
      const cumulative = new Float64Array(values.length);
      for (let i = 0; i < values.length; i++) cumulative[i] = i + 1;
      this.pointsCache = { values, cumulative, total: values.length };
    }
    return this.pointsCache;
  }

  /** Number of distinct finite values (exact mode), or among the sketch's retained items (a lower bound). */
  distinctCount(): number {
    const { values } = this.points();
    let distinct = 0;
    for (let i = 0; i < values.length; i++) if (i === 0 || values[i] !== values[i - 1]) distinct++;
    return distinct;
  }

  /** q-quantile (0 ≤ q ≤ 1) of the finite values, NaN when there are none. */
  quantile(q: number): number {
    const { values, cumulative, total } = this.points();
    if (total === 0) return Number.NaN;
    const target = Math.min(Math.max(q, 0), 1) * total;
    let lo = 0;
    let hi = values.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < target) lo = mid + 1;
      else hi = mid;
    }
    return values[lo]!;
  }

  /** A new profile equal to profiling both inputs' rows (within the sketch bound). */
  merge(other: NumericProfile): NumericProfile {
    const out = new NumericProfile({ exactLimit: Math.min(this.exactLimit, other.exactLimit), sketchK: Math.min(this.sketchK, other.sketchK) });
    out.missing = this.missing + other.missing;
    out.nonFinite = this.nonFinite + other.nonFinite;
    out.invalid = this.invalid + other.invalid;
    out.min = Math.min(this.min, other.min);
    out.max = Math.max(this.max, other.max);
    const n = this.count + other.count;
    if (n > 0) {
      const delta = other.mean - this.mean;
      out.mean = this.mean + (delta * other.count) / n;
      out.m2 = this.m2 + other.m2 + (delta * delta * this.count * other.count) / n;
    }
    out.count = n;
    if (this.exact && other.exact && n <= out.exactLimit) {
      const values = new Float64Array(Math.max(1, n));
      values.set(this.exact.subarray(0, this.count));
      values.set(other.exact.subarray(0, other.count), this.count);
      out.exact = values;
      out.sketch = undefined;
    } else {
      out.exact = undefined;
      out.sketch = this.asSketch(out.sketchK);
      out.sketch.merge(other.asSketch(out.sketchK));
    }
    return out;
  }

  private asSketch(k: number): KllSketch {
    if (this.sketch && this.sketch.k === k) return this.sketch.clone();
    const sketch = new KllSketch(k);
    if (this.sketch) sketch.merge(this.sketch);
    else for (const v of this.exact!.subarray(0, this.count)) sketch.update(v);
    return sketch;
  }

  toJSON(): NumericProfileJSON {
    const json: NumericProfileJSON = {
      type: "numeric",
      count: this.count,
      missing: this.missing,
      nonFinite: this.nonFinite,
      invalid: this.invalid,
      min: this.count > 0 ? this.min : null,
      max: this.count > 0 ? this.max : null,
      mean: this.mean,
      m2: this.m2,
      exactLimit: Number.isFinite(this.exactLimit) ? this.exactLimit : null,
      sketchK: this.sketchK,
    };
    if (this.exact) json.values = encodeFloats(this.exact.subarray(0, this.count));
    else json.sketch = this.sketch!.toJSON();
    return json;
  }

  /** Trusts the shape (checked by `parseProfileJSON`); checks the counts agree. */
  static fromJSON(json: NumericProfileJSON, where: string): NumericProfile {
    const profile = new NumericProfile({ exactLimit: json.exactLimit ?? Infinity, sketchK: json.sketchK });
    profile.count = json.count;
    profile.missing = json.missing;
    profile.nonFinite = json.nonFinite;
    profile.invalid = json.invalid;
    profile.min = json.min ?? Infinity;
    profile.max = json.max ?? -Infinity;
    profile.mean = json.mean;
    profile.m2 = json.m2;
    if (json.values !== undefined) {
      const values = decodeFloat64(json.values, `${where}.values`);
      if (values.length !== json.count) throw new RangeError(`${where}.values: holds ${values.length} values but count is ${json.count}`);
      profile.exact = values.length > 0 ? values : new Float64Array(1);
      profile.sketch = undefined;
    } else if (json.sketch !== undefined) {
      const sketch = KllSketch.fromJSON(json.sketch, `${where}.sketch`);
      if (sketch.n !== json.count) throw new RangeError(`${where}.sketch: n is ${sketch.n} but count is ${json.count}`);
      profile.sketch = sketch;
      profile.exact = undefined;
    } else {
      throw new RangeError(`${where}: needs either "values" (exact mode) or "sketch"`);
    }
    return profile;
  }
}
