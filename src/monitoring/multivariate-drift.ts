// Multivariate drift as NannyML's DataReconstructionDriftCalculator measures it: the reference rows, encoded and
// standardised, are compressed by PCA to the components holding ~65 % of their variance; a row that breaks the
// reference's correlations is reconstructed badly even when every one of its values is common. A window's signal
// is its rows' mean reconstruction error (Euclidean norm of scaled row − reconstruction), judged against the
// reference's own windows: mean ± 3 std. Per row it costs one projection; windows and replicas merge as sums.
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

/** Share of the scaled reference's variance the kept components explain at least (NannyML's default). */
export const PCA_VARIANCE_TARGET = 0.65;
/** Half-width of the no-drift band in standard deviations of the reference windows' mean error (NannyML's default). */
export const BAND_STDS = 3;
/** Features a reference may encode: the components are at most features², and they live in metadata.json. */
export const MAX_PCA_FEATURES = 256;
/** Categories per feature with their own frequency; rarer ones encode as 0, like an unseen one. */
export const MAX_FREQUENCY_CATEGORIES = 100;

const Name = Type.String({ minLength: 1, maxLength: 1024 });
const Share = Type.Number({ minimum: 0, maximum: 1 });

/** How the sidecar and `ballast train` turn one raw value into a number before scaling. */
const EncodedFeatureSchema = Type.Union([
  // Numeric: the value itself; missing or unparsable → the reference mean (0 once scaled), as a mean imputer.
  Type.Object({ name: Name, type: Type.Literal("numeric") }),
  // Categorical: frequency encoding (NannyML's CountEncoder, normalize=True): the category's share of reference rows;
  // unseen (or beyond the MAX_FREQUENCY_CATEGORIES most frequent) → 0; missing → the most frequent's share.
  Type.Object({
    name: Name,
    type: Type.Literal("categorical"),
    frequencies: Type.Record(Type.String({ maxLength: 1024 }), Share, { maxProperties: MAX_FREQUENCY_CATEGORIES }),
    missing: Share,
  }),
]);

/** The no-drift band: reference windows' mean error at a few window sizes (others scale as 1/√rows). */
export const ReconstructionBandSchema = Type.Object({
  /** Mean reconstruction error of the reference rows (the expected window mean at any size). */
  mean: Type.Number({ minimum: 0 }),
  /** Window sizes the spread was measured at, increasing, with the std of the windows' mean error at each. */
  windowSizes: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, maxItems: 16 }),
  std: Type.Array(Type.Number({ minimum: 0 }), { minItems: 1, maxItems: 16 }),
  stds: Type.Number({ exclusiveMinimum: 0 }),
});

/** What `ballast train` stores in metadata.json (`multivariateReference`): the encoder, the scaler, the components, the band. */
export const PcaReferenceSchema = Type.Object({
  method: Type.Literal("pca-reconstruction"),
  features: Type.Array(EncodedFeatureSchema, { minItems: 1, maxItems: MAX_PCA_FEATURES }),
  /** Per encoded column: mean and population std (StandardScaler; a constant column gets scale 1). */
  center: Type.Array(Type.Number(), { maxItems: MAX_PCA_FEATURES }),
  scale: Type.Array(Type.Number({ exclusiveMinimum: 0 }), { maxItems: MAX_PCA_FEATURES }),
  /** Principal axes of the scaled reference, one row per kept component (orthonormal). */
  components: Type.Array(Type.Array(Type.Number(), { maxItems: MAX_PCA_FEATURES }), { minItems: 1, maxItems: MAX_PCA_FEATURES }),
  varianceTarget: Share,
  /** Share of variance the kept components explain (just above varianceTarget). */
  explainedVariance: Share,
  /** Reference rows fitted on. */
  rows: Type.Integer({ minimum: 2 }),
  band: ReconstructionBandSchema,
});

export type PcaReferenceJSON = Static<typeof PcaReferenceSchema>;
export type ReconstructionBandJSON = Static<typeof ReconstructionBandSchema>;
export type EncodedFeature = Static<typeof EncodedFeatureSchema>;

/** A window's reconstruction errors in additive form, with the band to judge it by (carried so the operator needs no metadata). */
export interface ReconstructionWindowJSON {
  rows: number;
  sumError: number;
  band: ReconstructionBandJSON;
}

/** One window judged: its mean error and the band at its size. */
export interface MultivariateDrift {
  rows: number;
  reconstructionError: number;
  lower: number;
  upper: number;
  drift: boolean;
}

export class PcaReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PcaReferenceError";
  }
}

function numberOf(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "string" && value.trim() !== "") {
    const n = Number(value.trim());
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function categoryOf(value: unknown): string | undefined {
  if (typeof value === "string") return value === "" ? undefined : value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

/** One raw value as the encoder sees it, before scaling; `center` stands in for a missing numeric. */
export function encodeValue(feature: EncodedFeature, value: unknown, center: number): number {
  if (feature.type === "numeric") return numberOf(value) ?? center;
  const category = categoryOf(value);
  if (category === undefined) return feature.missing;
  return Object.hasOwn(feature.frequencies, category) ? feature.frequencies[category]! : 0;
}

/** The reference fitted at training time, ready to measure rows: encode, scale, project, reconstruct. */
export class PcaReconstruction {
  readonly features: readonly EncodedFeature[];
  private readonly center: Float64Array;
  private readonly scale: Float64Array;
  /** Components row-major, k × d. */
  private readonly components: Float64Array;
  private readonly k: number;
  private readonly scaled: Float64Array;
  private readonly projected: Float64Array;

  constructor(readonly json: PcaReferenceJSON) {
    const first = Value.Errors(PcaReferenceSchema, json).First();
    if (first) throw new PcaReferenceError(`multivariate reference ${first.path || "/"}: ${first.message}`);
    const d = json.features.length;
    if (json.center.length !== d || json.scale.length !== d)
      throw new PcaReferenceError(`multivariate reference: center and scale need ${d} values, one per feature`);
    if (json.components.some((c) => c.length !== d)) throw new PcaReferenceError(`multivariate reference: every component needs ${d} values`);
    if (json.components.length > d) throw new PcaReferenceError(`multivariate reference: ${json.components.length} components for ${d} features`);
    if (json.band.windowSizes.length !== json.band.std.length) throw new PcaReferenceError("multivariate reference band: one std per window size");
    this.features = json.features;
    this.center = Float64Array.from(json.center);
    this.scale = Float64Array.from(json.scale);
    this.k = json.components.length;
    this.components = Float64Array.from(json.components.flat());
    this.scaled = new Float64Array(d);
    this.projected = new Float64Array(this.k);
  }

  /** The standardised encoding of one row (`values` in `features` order) into `out`. */
  scaleRow(values: readonly unknown[], out: Float64Array = new Float64Array(this.features.length)): Float64Array {
    this.features.forEach((f, j) => (out[j] = (encodeValue(f, values[j], this.center[j]!) - this.center[j]!) / this.scale[j]!));
    return out;
  }

  /** ‖x − CᵀCx‖ of the scaled row x: how far it lies from the reference's principal subspace. */
  errorOfScaled(x: Float64Array): number {
    const d = x.length;
    const c = this.components;
    for (let i = 0; i < this.k; i++) {
      let dot = 0;
      for (let j = 0; j < d; j++) dot += c[i * d + j]! * x[j]!;
      this.projected[i] = dot;
    }
    let sum = 0;
    for (let j = 0; j < d; j++) {
      let reconstructed = 0;
      for (let i = 0; i < this.k; i++) reconstructed += this.projected[i]! * c[i * d + j]!;
      sum += (x[j]! - reconstructed) ** 2;
    }
    return Math.sqrt(sum);
  }

  /** Reconstruction error of one raw row (`values` in `features` order). */
  errorOf(values: readonly unknown[]): number {
    return this.errorOfScaled(this.scaleRow(values, this.scaled));
  }
}

/** Sum and count of a window's row errors: replicas and windows merge exactly. */
export class ReconstructionErrorSum {
  rows = 0;
  sumError = 0;

  constructor(readonly band: ReconstructionBandJSON) {}

  add(error: number): void {
    this.rows++;
    this.sumError += error;
  }

  toJSON(): ReconstructionWindowJSON {
    return { rows: this.rows, sumError: this.sumError, band: this.band };
  }
}

/** Both windows' sums; the band is the version's, the same in both (summaryConflict refuses a mix). */
export function mergeReconstruction(a: ReconstructionWindowJSON | undefined, b: ReconstructionWindowJSON | undefined): ReconstructionWindowJSON | undefined {
  if (!a || !b) return a ?? b;
  return { rows: a.rows + b.rows, sumError: a.sumError + b.sumError, band: a.band };
}

/**
 * The band at a window of `rows` rows: mean ± stds·std, the std measured at the nearest calibrated size (on a log
 * scale) and scaled by √(size/rows), since a mean of n rows varies as 1/√n. The lower bound stops at 0.
 */
export function reconstructionBand(band: ReconstructionBandJSON, rows: number): { lower: number; upper: number } {
  let nearest = 0;
  for (let i = 1; i < band.windowSizes.length; i++)
    if (Math.abs(Math.log(band.windowSizes[i]! / rows)) < Math.abs(Math.log(band.windowSizes[nearest]! / rows))) nearest = i;
  const std = band.std[nearest]! * Math.sqrt(band.windowSizes[nearest]! / Math.max(1, rows));
  return { lower: Math.max(0, band.mean - band.stds * std), upper: band.mean + band.stds * std };
}

/** A window's mean error against its band; null without rows. */
export function multivariateDrift(window: ReconstructionWindowJSON | undefined): MultivariateDrift | null {
  if (!window || window.rows === 0) return null;
  const reconstructionError = window.sumError / window.rows;
  const { lower, upper } = reconstructionBand(window.band, window.rows);
  return { rows: window.rows, reconstructionError, lower, upper, drift: reconstructionError < lower || reconstructionError > upper };
}
