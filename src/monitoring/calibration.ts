// No-drift calibration: each feature's drift statistic between two disjoint samples of the same data, at a
// window's size. Distances are biased upwards by sampling noise that grows with cardinality and shrinks with
// sample size, so one fixed threshold cannot fit every feature and window; the quantile of this null
// distribution can. Samples are drawn without replacement (subsampling / permutation), not bootstrapped:
// a bootstrap from the empirical distribution never shows the rare values a real sample brings and put the
// flights airports' quantile below the statistic of random halves. Seeded, so results are reproducible.
import { CategoricalProfile } from "./categorical-profile.js";
import { BINNING_MIN_DISTINCT, featureStatistic, type DriftMethod } from "./compare.js";
import type { DatasetProfile, FeatureProfile, ProfileOptions } from "./dataset-profile.js";
import { NumericProfile } from "./numeric-profile.js";
import { ProfileFormatError } from "./schema.js";
import { seededRandom } from "./seeded-random.js";

/** Window sizes a reference is calibrated at (those up to a quarter of its rows, plus half); others interpolate. */
export const CALIBRATION_WINDOW_SIZES: readonly number[] = [100, 300, 1000, 3000, 10000];
export const DEFAULT_CALIBRATION_RESAMPLES = 200;
/** Quantile of the no-drift distribution a statistic must exceed: about 1 false alarm per feature in 100 windows. */
export const DEFAULT_CALIBRATION_LEVEL = 0.99;
export const DEFAULT_CALIBRATION_SEED = 20_261_205;
/** The reference stand-in drawn beside each window holds at most this many rows (more: conservative). */
export const MAX_REPLICATE_ROWS = 10_000;
/**
 * `ballast drift` permutes at most this many rows per feature: larger files are permuted at both sizes scaled
 * down alike, whose null quantile is larger (conservative), keeping the cost near 5 s per numeric feature.
 */
export const MAX_PERMUTATION_ROWS = 200_000;
/** Profiles with more rows are resampled from a proportionally thinned urn of this many items. */
const MAX_URN_ITEMS = 1_000_000;
/** Below this many rows a feature is left uncalibrated (fixed thresholds apply). */
const MIN_CALIBRATION_ROWS = 20;

export interface CalibrationOptions {
  /** Window sizes to calibrate at (default CALIBRATION_WINDOW_SIZES); sizes above half the reference are replaced by half. */
  windowSizes?: readonly number[];
  resamples?: number;
  level?: number;
  seed?: number;
  /** How resampled profiles are built: as the profiles the live comparison sees (default: DatasetProfile's). */
  profileOptions?: ProfileOptions;
}

export interface FeatureCalibrationJSON {
  /** Current-window sizes calibrated at, increasing. */
  windowSizes: number[];
  /** method → the no-drift quantile at each of `windowSizes`. */
  quantiles: Partial<Record<DriftMethod, number[]>>;
}

export interface DriftCalibrationJSON {
  level: number;
  resamples: number;
  seed: number;
  features: Record<string, FeatureCalibrationJSON>;
}

/** 32-bit FNV-1a, to derive one random stream per feature from the seed. */
function hash32(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/**
 * A profile's rows as an urn of cell indices that draws disjoint samples: each draw partially shuffles the
 * first k slots (Fisher–Yates from any arrangement gives a uniform sample), so no copy per draw.
 */
class Urn {
  readonly size: number;
  private readonly items: Int32Array;

  constructor(
    weights: readonly number[],
    private readonly add: (profile: FeatureProfile, cell: number) => void,
    private readonly create: () => FeatureProfile,
  ) {
    const total = weights.reduce((s, w) => s + w, 0);
    const scale = total > MAX_URN_ITEMS ? MAX_URN_ITEMS / total : 1;
    const counts = weights.map((w) => Math.round(w * scale));
    this.size = counts.reduce((s, c) => s + c, 0);
    this.items = new Int32Array(this.size);
    let at = 0;
    counts.forEach((c, cell) => {
      this.items.fill(cell, at, at + c);
      at += c;
    });
  }

  /** Disjoint profiles of each size in `sizes` (their sum at most `size`). */
  draw(sizes: readonly number[], random: () => number): FeatureProfile[] {
    const k = sizes.reduce((s, n) => s + n, 0);
    const items = this.items;
    for (let i = 0; i < k; i++) {
      const j = i + Math.floor(random() * (this.size - i));
      const t = items[i]!;
      items[i] = items[j]!;
      items[j] = t;
    }
    let at = 0;
    return sizes.map((n) => {
      const profile = this.create();
      for (let i = at; i < at + n; i++) this.add(profile, items[i]!);
      at += n;
      return profile;
    });
  }
}

function urnOf(profile: FeatureProfile, options: ProfileOptions): Urn {
  if (profile.type === "numeric") {
    const { values, cumulative } = profile.points();
    const weights = Array.from(cumulative, (c, i) => c - (i > 0 ? cumulative[i - 1]! : 0));
    return new Urn(
      weights,
      (p, cell) => (p as NumericProfile).addNumber(values[cell]!),
      () => new NumericProfile(options),
    );
  }
  const named = [...profile.counts];
  const buckets = [...profile.hashed];
  const weights = [...named.map(([, n]) => n), ...buckets.map(([, n]) => n)];
  const add = (p: FeatureProfile, cell: number) => {
    const c = p as CategoricalProfile;
    if (cell < named.length) c.addCategory(named[cell]![0]);
    else c.addToBucket(buckets[cell - named.length]![0]);
  };
  return new Urn(weights, add, () => new CategoricalProfile(options));
}

function methodsFor(profile: FeatureProfile): DriftMethod[] {
  if (profile.type === "categorical") return ["psi", "jensenshannon", "chisquare"];
  // Chi-squared compares numerics per distinct value: only meaningful for discrete ones.
  const all: DriftMethod[] = ["psi", "ks", "jensenshannon", "wasserstein"];
  return profile.distinctCount() <= BINNING_MIN_DISTINCT ? [...all, "chisquare"] : all;
}

/** The ⌈level·(B+1)⌉-th smallest of B null values: the Monte-Carlo test's critical value. */
function upperQuantile(values: number[], level: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(level * (sorted.length + 1)) - 1)]!;
}

interface Plan {
  window: number;
  replicate: number;
}

/** Null quantiles of one feature: for each plan, `resamples` disjoint (replicate, window) pairs from the urn. */
function calibrateFeature(
  name: string,
  profile: FeatureProfile,
  plans: readonly Plan[],
  options: Required<Omit<CalibrationOptions, "windowSizes">>,
): FeatureCalibrationJSON | undefined {
  const urn = urnOf(profile, options.profileOptions);
  const usable = plans.filter((p) => p.window >= 1 && p.replicate >= 1 && p.window + p.replicate <= urn.size);
  if (usable.length === 0) return undefined;
  const random = seededRandom(hash32(name, options.seed));
  const methods = methodsFor(profile);
  const nulls = methods.map(() => usable.map(() => [] as number[]));
  for (let b = 0; b < options.resamples; b++) {
    usable.forEach((plan, s) => {
      const [replicate, window] = urn.draw([plan.replicate, plan.window], random);
      methods.forEach((method, m) => {
        const statistic = featureStatistic(method, replicate!, window!);
        if (statistic !== null && Number.isFinite(statistic)) nulls[m]![s]!.push(statistic);
      });
    });
  }
  const quantiles: FeatureCalibrationJSON["quantiles"] = {};
  methods.forEach((method, m) => {
    // A method undefined on most resamples (e.g. a constant feature) stays uncalibrated: fixed thresholds apply.
    if (nulls[m]!.every((values) => values.length >= options.resamples / 2))
      quantiles[method] = nulls[m]!.map((values) => upperQuantile(values, options.level));
  });
  return { windowSizes: usable.map((p) => p.window), quantiles };
}

function resolved(options: CalibrationOptions): Required<Omit<CalibrationOptions, "windowSizes">> {
  const resamples = options.resamples ?? DEFAULT_CALIBRATION_RESAMPLES;
  const level = options.level ?? DEFAULT_CALIBRATION_LEVEL;
  if (!Number.isInteger(resamples) || resamples < 1) throw new RangeError(`resamples must be a positive integer, got ${resamples}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`level must be in (0, 1), got ${level}`);
  return { resamples, level, seed: options.seed ?? DEFAULT_CALIBRATION_SEED, profileOptions: options.profileOptions ?? {} };
}

export class DriftCalibration {
  constructor(readonly json: DriftCalibrationJSON) {}

  get level(): number {
    return this.json.level;
  }

  /** The no-drift quantile of `method` for `feature` at `rows` current rows; undefined when not calibrated. */
  threshold(feature: string, method: DriftMethod, rows: number): number | undefined {
    const entry = this.json.features[feature];
    const quantiles = entry?.quantiles[method];
    if (!entry || !quantiles) return undefined;
    const sizes = entry.windowSizes;
    if (sizes.length === 1) return quantiles[0];
    // Between sizes and beyond them the quantile follows the nearest segment's power law in the window size
    // (sampling noise of a distance shrinks like a power of the rows).
    let i = sizes.findIndex((s, k) => k + 1 < sizes.length && rows < sizes[k + 1]!);
    if (i < 0) i = sizes.length - 2;
    const [n0, n1, q0, q1] = [sizes[i]!, sizes[i + 1]!, quantiles[i]!, quantiles[i + 1]!];
    const t = Math.log(Math.max(rows, 1) / n0) / Math.log(n1 / n0);
    // Past the largest size the reference's own noise stays: at most it halves (it is half the noise when the
    // window is as large as the reference), so the quantile never drops below half of the largest size's.
    const floor = rows > sizes[sizes.length - 1]! ? quantiles[quantiles.length - 1]! / 2 : 0;
    if (q0 > 0 && q1 > 0) return Math.max(floor, Math.exp(Math.log(q0) + t * (Math.log(q1) - Math.log(q0))));
    return Math.max(floor, q0 + t * (q1 - q0));
  }

  toJSON(): DriftCalibrationJSON {
    return this.json;
  }

  /** Checks the shape a writer (ballast train, another version) produced; throws ProfileFormatError naming the field. */
  static fromJSON(json: unknown, where = "calibration"): DriftCalibration {
    const fail = (path: string, message: string): never => {
      throw new ProfileFormatError(`${where}${path}: ${message}`);
    };
    const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
    if (!isObject(json)) return fail("", "expected an object");
    if (typeof json.level !== "number" || !(json.level > 0 && json.level < 1)) fail(".level", "expected a number in (0, 1)");
    if (!Number.isInteger(json.resamples) || (json.resamples as number) < 1) fail(".resamples", "expected a positive integer");
    if (!Number.isInteger(json.seed)) fail(".seed", "expected an integer");
    if (!isObject(json.features)) return fail(".features", "expected an object");
    for (const [name, entry] of Object.entries(json.features)) {
      if (!isObject(entry)) return fail(`.features.${name}`, "expected an object");
      const sizes = entry.windowSizes;
      if (
        !Array.isArray(sizes) ||
        sizes.length === 0 ||
        sizes.some((s, i) => !Number.isInteger(s) || (s as number) < 1 || (i > 0 && (s as number) <= (sizes[i - 1] as number)))
      ) {
        fail(`.features.${name}.windowSizes`, "expected increasing positive integers");
      }
      if (!isObject(entry.quantiles)) return fail(`.features.${name}.quantiles`, "expected an object");
      for (const [method, q] of Object.entries(entry.quantiles)) {
        if (!Array.isArray(q) || q.length !== (sizes as number[]).length || q.some((x) => typeof x !== "number" || !Number.isFinite(x) || x < 0)) {
          fail(`.features.${name}.quantiles.${method}`, `expected ${(sizes as number[]).length} finite non-negative numbers`);
        }
      }
    }
    return new DriftCalibration(json as unknown as DriftCalibrationJSON);
  }
}

/**
 * Grid sizes up to a quarter of the reference's rows, and half of them (the largest window that still leaves
 * a replicate as large) unless the grid already reaches past it: sizes at least 2× apart, so the power law
 * read between and beyond them is not fitted to noise (two sizes 1% apart once gave a 200-row window 5% false
 * alarms). A reference too small for any grid size gets a sixth and a half of its rows.
 */
function windowSizesFor(rows: number, grid: readonly number[]): number[] {
  const half = Math.floor(rows / 2);
  const below = grid.filter((n) => n <= half / 2);
  const sizes = below.length > 0 ? below : [Math.max(1, Math.floor(rows / 6))];
  if (half <= 2 * Math.max(...grid)) sizes.push(half);
  return [...new Set(sizes)].sort((a, b) => a - b);
}

/**
 * The operator's calibration, stored with the reference profile: for every feature, at the grid's window sizes
 * that fit it (windowSizesFor), `resamples` times a window and a disjoint replicate of the
 * rest (up to MAX_REPLICATE_ROWS) drawn without replacement; each statistic `compare` could use, computed as it
 * does; the `level` quantile kept. Cost: resamples × Σ (window + replicate) rows per feature.
 */
export function calibrateDrift(reference: DatasetProfile, options: CalibrationOptions = {}): DriftCalibration {
  const settings = resolved(options);
  const grid = [...(options.windowSizes ?? CALIBRATION_WINDOW_SIZES)];
  if (grid.length === 0 || grid.some((n) => !Number.isInteger(n) || n < 1))
    throw new RangeError(`window sizes must be positive integers, got ${grid.join(", ")}`);
  const features: DriftCalibrationJSON["features"] = {};
  for (const [name, profile] of reference.features) {
    if (profile.count < MIN_CALIBRATION_ROWS) continue;
    const sizes = windowSizesFor(profile.count, grid);
    const plans = sizes.map((window) => ({ window, replicate: Math.min(profile.count - window, MAX_REPLICATE_ROWS) }));
    const entry = calibrateFeature(name, profile, plans, settings);
    if (entry) features[name] = entry;
  }
  return new DriftCalibration({ level: settings.level, resamples: settings.resamples, seed: settings.seed, features });
}

/**
 * `ballast drift`'s calibration: a permutation test. Under no drift the reference and current rows are
 * exchangeable, so splitting their pooled profile at random into the two files' sizes gives the statistic's
 * exact null distribution, at any cardinality and any pair of sizes (up to MAX_PERMUTATION_ROWS together).
 */
export function permutationCalibration(
  reference: DatasetProfile,
  current: DatasetProfile,
  options: Omit<CalibrationOptions, "windowSizes"> = {},
): DriftCalibration {
  const settings = resolved(options);
  const features: DriftCalibrationJSON["features"] = {};
  for (const [name, ref] of reference.features) {
    const cur = current.features.get(name);
    if (!cur || cur.type !== ref.type || ref.count < 1 || cur.count < 1) continue;
    const pooled = ref.type === "numeric" ? ref.merge(cur as NumericProfile) : ref.merge(cur as CategoricalProfile);
    const scale = Math.min(1, MAX_PERMUTATION_ROWS / (ref.count + cur.count));
    const plan = { window: Math.max(1, Math.floor(cur.count * scale)), replicate: Math.max(1, Math.floor(ref.count * scale)) };
    const entry = calibrateFeature(name, pooled, [plan], settings);
    if (entry) features[name] = entry;
  }
  return new DriftCalibration({ level: settings.level, resamples: settings.resamples, seed: settings.seed, features });
}
