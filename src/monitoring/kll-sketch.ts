// KLL quantile sketch (Karnin, Lang, Liberty 2016), the same design as Apache DataSketches' KllFloatsSketch.
// Chosen over DDSketch (relative *value* error) and t-digest (no worst-case bound) because KS, PSI and JS
// read the CDF, and KLL bounds the CDF's *rank* error independently of how many merges built the sketch.
// No maintained npm KLL exists, so this is ours: levels of float32 items, level h weighing 2^h.

// Level capacities shrink by CAPACITY_DECAY per level below the top (DataSketches uses 2/3). Measured here at
// ~600 retained items (the 4 KiB budget): k = 400 with decay 0.3 gives 20–30% lower CDF error than k = 200
// with 2/3, because the error is dominated by the few heavy top-level compactions.
export const DEFAULT_KLL_K = 400;
const CAPACITY_DECAY = 0.3;

/**
 * Bound on |F̂(x) − F(x)| (rank error as a fraction of n) for a sketch with parameter k. KLL's error is
 * O(1/k) with high probability, independent of n and of the merges; the constant is measured: at k = 400
 * the worst error over all query points stayed below 0.0095 at 10⁶ values (bell, heavy-tailed, discrete and
 * sorted inputs; test/unit/monitoring/sketch.test.ts asserts the bound), so 0.012 · 400/k is documented.
 */
export function kllRankErrorBound(k: number): number {
  return (0.012 * DEFAULT_KLL_K) / k;
}

const MIN_LEVEL_CAPACITY = 8;
export const FLOAT32_MAX = 3.4028234663852886e38;
const DEFAULT_SEED = 0x9e3779b9;

/** Serialized form: `items` is base64 of little-endian float32, level by level (sizes in `levels`). */
export interface KllSketchJSON {
  k: number;
  n: number;
  rng: number;
  levels: number[];
  items: string;
}

/** Weighted, sorted view of the sketch for CDF and quantile queries. */
export interface WeightedPoints {
  values: Float64Array;
  /** Cumulative weight up to and including values[i]. */
  cumulative: Float64Array;
  total: number;
}

// Rounds to float32 without overflowing to Infinity, so the order of finite values is kept.
function toFloat32(x: number): number {
  if (x > FLOAT32_MAX) return FLOAT32_MAX;
  if (x < -FLOAT32_MAX) return -FLOAT32_MAX;
  return Math.fround(x);
}

// LSD radix sort of float32 by their bits (mapped so unsigned order is numeric order), one byte per pass: no
// comparisons to mispredict, about three times faster than a quicksort on the level-0 batches of ingestion's
// hot path; a pass where every item shares the byte is skipped. Short runs use insertion sort.
const RADIX_MIN = 64;
let radixScratch = new Uint32Array(1024);
const radixCounts = new Uint32Array(4 * 256);

function sortFloats(a: Float32Array, n: number): void {
  if (n < RADIX_MIN) {
    insertionSort(a, n);
    return;
  }
  if (radixScratch.length < n) radixScratch = new Uint32Array(Math.max(n, radixScratch.length * 2));
  let src: Uint32Array = new Uint32Array(a.buffer, a.byteOffset, n);
  let dst: Uint32Array = radixScratch.subarray(0, n);
  const counts = radixCounts;
  counts.fill(0);
  for (let i = 0; i < n; i++) {
    const u = src[i]!;
    // Negative floats: flip every bit; others: flip the sign bit.
    const key = (u ^ ((u >> 31) | 0x80000000)) >>> 0;
    src[i] = key;
    counts[key & 0xff]!++;
    counts[256 + ((key >>> 8) & 0xff)]!++;
    counts[512 + ((key >>> 16) & 0xff)]!++;
    counts[768 + (key >>> 24)]!++;
  }
  for (let pass = 0; pass < 4; pass++) {
    const base = pass * 256;
    const shift = pass * 8;
    if (counts[base + ((src[0]! >>> shift) & 0xff)] === n) continue;
    let sum = 0;
    for (let b = base; b < base + 256; b++) {
      const c = counts[b]!;
      counts[b] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const key = src[i]!;
      dst[counts[base + ((key >>> shift) & 0xff)]!++] = key;
    }
    const t = src;
    src = dst;
    dst = t;
  }
  const out = new Uint32Array(a.buffer, a.byteOffset, n);
  for (let i = 0; i < n; i++) {
    const key = src[i]!;
    out[i] = key & 0x80000000 ? key ^ 0x80000000 : ~key;
  }
}

function insertionSort(a: Float32Array, n: number): void {
  for (let i = 1; i < n; i++) {
    const v = a[i]!;
    let j = i - 1;
    while (j >= 0 && a[j]! > v) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = v;
  }
}

// Merges sorted `a` with the `count` items b[start], b[start + 2], ... (sorted): a compaction's promotion
// without a copy of the promoted items.
function mergeEveryOther(a: Float32Array, b: Float32Array, start: number, count: number): Float32Array {
  const out = new Float32Array(a.length + count);
  let i = 0;
  let j = start;
  const end = start + 2 * count;
  let o = 0;
  while (i < a.length && j < end) {
    if (a[i]! <= b[j]!) out[o++] = a[i++]!;
    else {
      out[o++] = b[j]!;
      j += 2;
    }
  }
  while (i < a.length) out[o++] = a[i++]!;
  for (; j < end; j += 2) out[o++] = b[j]!;
  return out;
}

function mergeSorted(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let o = 0;
  while (i < a.length && j < b.length) out[o++] = a[i]! <= b[j]! ? a[i++]! : b[j++]!;
  while (i < a.length) out[o++] = a[i++]!;
  while (j < b.length) out[o++] = b[j++]!;
  return out;
}

export class KllSketch {
  readonly k: number;
  private count = 0;
  private retainedCount = 0;
  private capacityTotal = 0;
  private capacities: number[] = [];
  private rngState: number;
  // levels[0] is an unsorted buffer (first level0Size slots used); higher levels are sorted.
  private level0: Float32Array;
  private level0Size = 0;
  private upper: Float32Array[] = [];
  private sortedCache: WeightedPoints | undefined;

  constructor(k = DEFAULT_KLL_K, seed = DEFAULT_SEED) {
    if (!Number.isInteger(k) || k < MIN_LEVEL_CAPACITY || k > 65535) {
      throw new RangeError(`KLL k must be an integer in [${MIN_LEVEL_CAPACITY}, 65535], got ${k}`);
    }
    this.k = k;
    this.rngState = seed >>> 0 || DEFAULT_SEED;
    this.level0 = new Float32Array(k);
    this.refreshCapacity();
  }

  get n(): number {
    return this.count;
  }

  /** True while nothing was compacted: the sketch still holds every value (as float32). */
  get isExact(): boolean {
    return this.upper.length === 0;
  }

  get retained(): number {
    return this.retainedCount;
  }

  private get numLevels(): number {
    return this.upper.length + 1;
  }

  private capacity(level: number): number {
    return this.capacities[level]!;
  }

  // Capacities depend only on the number of levels: computed when it changes, read on every compaction.
  private refreshCapacity(): void {
    const levels = this.numLevels;
    this.capacities = Array.from({ length: levels }, (_, h) => Math.max(MIN_LEVEL_CAPACITY, Math.ceil(this.k * Math.pow(CAPACITY_DECAY, levels - 1 - h))));
    this.capacityTotal = this.capacities.reduce((a, b) => a + b, 0);
  }

  private nextBit(): number {
    // xorshift32: deterministic, so the same data always gives the same sketch.
    let x = this.rngState;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rngState = x >>> 0;
    return this.rngState & 1;
  }

  /** Adds one finite value (callers filter NaN/Infinity). */
  update(value: number): void {
    if (this.level0Size === this.level0.length) this.growLevel0(this.level0.length * 2);
    this.level0[this.level0Size++] = toFloat32(value);
    this.count++;
    this.retainedCount++;
    this.sortedCache = undefined;
    // Level 0 takes a batch of up to k items before compacting: one sort and a few allocations per
    // batch instead of per handful of items (the compactions are the same kind, only fewer and larger).
    if (this.level0Size >= this.k) this.settle();
  }

  /**
   * Adds values[from, to) (finite; callers filter NaN/Infinity): the same sketch as `update` on each in order,
   * with level 0 filled by runs instead of one call per value (the ingest hot path of column batches).
   * `inFloat32Range`: the caller knows every value is within ±FLOAT32_MAX, so none needs clamping.
   */
  updateAll(values: Float64Array, from = 0, to = values.length, inFloat32Range = false): void {
    let i = from;
    while (i < to) {
      if (this.level0Size === this.level0.length) this.growLevel0(this.level0.length * 2);
      // `update` settles after the add that brings level 0 to k items, and after every add beyond k.
      const take = Math.min(to - i, this.level0.length - this.level0Size, Math.max(this.k - this.level0Size, 1));
      const level0 = this.level0;
      let at = this.level0Size;
      if (inFloat32Range) {
        // Typed-array conversion rounds to nearest, as Math.fround.
        level0.set(values.subarray(i, i + take), at);
        at += take;
        i += take;
      } else {
        for (const end = i + take; i < end; i++) level0[at++] = toFloat32(values[i]!);
      }
      this.level0Size = at;
      this.count += take;
      this.retainedCount += take;
      this.sortedCache = undefined;
      if (at >= this.k) this.settle();
    }
  }

  /** Compacts until the sketch fits its capacity (done before serializing and querying). */
  settle(): void {
    while (this.retainedCount > this.capacityTotal) this.compactLowestFullLevel();
  }

  private growLevel0(size: number): void {
    const grown = new Float32Array(size);
    grown.set(this.level0.subarray(0, this.level0Size));
    this.level0 = grown;
  }

  // When the sketch holds as many items as its levels' capacities add up to, some level is full.
  private compactLowestFullLevel(): void {
    let h = 0;
    while (h < this.numLevels - 1 && this.levelSize(h) < this.capacity(h)) h++;
    this.compactLevel(h);
  }

  private levelSize(h: number): number {
    return h === 0 ? this.level0Size : this.upper[h - 1]!.length;
  }

  // Halves level h: keeps every other item (random offset) at double weight in level h+1.
  private compactLevel(h: number): void {
    let items: Float32Array;
    if (h === 0) {
      // Level 0 is sorted where it lies: what it keeps (at most one item) is written back to its start.
      sortFloats(this.level0, this.level0Size);
      items = this.level0.subarray(0, this.level0Size);
    } else {
      items = this.upper[h - 1]!;
    }
    const odd = items.length % 2;
    const half = (items.length - odd) / 2;
    const offset = this.nextBit();
    if (this.upper.length < h + 1) {
      this.upper.push(new Float32Array(0));
      this.refreshCapacity();
    }
    this.upper[h] = mergeEveryOther(this.upper[h]!, items, odd + offset, half);
    if (h === 0) this.level0Size = odd;
    else this.upper[h - 1] = items.slice(0, odd);
    this.retainedCount -= half;
  }

  /** Merges `other` into this sketch; the rank-error bound holds for the merged n. */
  merge(other: KllSketch): void {
    if (other.count === 0) return;
    const need = this.level0Size + other.level0Size;
    if (need > this.level0.length) this.growLevel0(need);
    this.level0.set(other.level0.subarray(0, other.level0Size), this.level0Size);
    this.level0Size = need;
    for (let h = 0; h < other.upper.length; h++) {
      if (this.upper.length <= h) this.upper.push(new Float32Array(0));
      this.upper[h] = mergeSorted(this.upper[h]!, other.upper[h]!);
    }
    this.count += other.count;
    this.retainedCount += other.retainedCount;
    this.refreshCapacity();
    this.rngState = (this.rngState ^ Math.imul(other.rngState, 2654435761)) >>> 0 || DEFAULT_SEED;
    this.sortedCache = undefined;
    this.settle();
  }

  clone(): KllSketch {
    return KllSketch.fromJSON(this.toJSON());
  }

  /** Items with weights, sorted by value. Cached until the next update. */
  weightedPoints(): WeightedPoints {
    if (this.sortedCache) return this.sortedCache;
    this.settle();
    const size = this.retained;
    const pairs: Array<[number, number]> = new Array(size);
    let p = 0;
    for (let i = 0; i < this.level0Size; i++) pairs[p++] = [this.level0[i]!, 1];
    this.upper.forEach((level, idx) => {
      const w = 2 ** (idx + 1);
      for (const v of level) pairs[p++] = [v, w];
    });
    pairs.sort((a, b) => a[0] - b[0]);
    const values = new Float64Array(size);
    const cumulative = new Float64Array(size);
    let acc = 0;
    for (let i = 0; i < size; i++) {
      values[i] = pairs[i]![0];
      acc += pairs[i]![1];
      cumulative[i] = acc;
    }
    this.sortedCache = { values, cumulative, total: acc };
    return this.sortedCache;
  }

  toJSON(): KllSketchJSON {
    this.settle();
    const sizes = [this.level0Size, ...this.upper.map((l) => l.length)];
    const all = new Float32Array(sizes.reduce((a, b) => a + b, 0));
    all.set(this.level0.subarray(0, this.level0Size));
    let at = this.level0Size;
    for (const level of this.upper) {
      all.set(level, at);
      at += level.length;
    }
    return { k: this.k, n: this.count, rng: this.rngState, levels: sizes, items: encodeFloats(all) };
  }

  static fromJSON(json: KllSketchJSON, where = "sketch"): KllSketch {
    const sketch = new KllSketch(json.k, json.rng);
    const items = decodeFloat32(json.items, `${where}.items`);
    const expected = json.levels.reduce((a, b) => a + b, 0);
    if (items.length !== expected) {
      throw new RangeError(`${where}: levels list ${expected} items but items holds ${items.length}`);
    }
    const [size0 = 0, ...rest] = json.levels;
    if (size0 > sketch.level0.length) sketch.growLevel0(size0);
    sketch.level0.set(items.subarray(0, size0));
    sketch.level0Size = size0;
    let at = size0;
    sketch.upper = rest.map((size) => {
      const level = items.slice(at, at + size);
      at += size;
      return level;
    });
    const weight = sketch.level0Size + sketch.upper.reduce((s, l, i) => s + l.length * 2 ** (i + 1), 0);
    if (weight !== json.n) throw new RangeError(`${where}: n is ${json.n} but the items weigh ${weight}`);
    sketch.count = json.n;
    sketch.retainedCount = expected;
    sketch.refreshCapacity();
    return sketch;
  }
}

/** Base64 of the array's little-endian bytes (the compact form of exact values and sketch items). */
export function encodeFloats(values: Float32Array | Float64Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString("base64");
}

function decodeBytes(text: string, width: 4 | 8, where: string): Uint8Array {
  const bytes = Buffer.from(text, "base64");
  if (bytes.length % width !== 0) throw new RangeError(`${where}: ${bytes.length} bytes is not a whole number of float${width * 8}`);
  // Copy into a fresh, aligned buffer: Buffer.from may return a slice of a shared pool.
  return new Uint8Array(bytes);
}

export function decodeFloat32(text: string, where: string): Float32Array {
  return new Float32Array(decodeBytes(text, 4, where).buffer);
}

export function decodeFloat64(text: string, where: string): Float64Array {
  return new Float64Array(decodeBytes(text, 8, where).buffer);
}
