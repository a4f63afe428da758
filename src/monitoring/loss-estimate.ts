// Direct loss estimation (DLE, as NannyML's): a regressor's error on rows nobody labelled, from a small model
// fitted at training time to predict each row's absolute and squared error from the model's inputs and its
// prediction, on rows the model did not train on. A window's estimate is the mean predicted error (MAE) and the
// root of the mean predicted squared error (RMSE). Pure sums: windows and replicas merge exactly.
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

/** Encoded input width a loss estimator may take (the model's own encoding plus the prediction). */
export const MAX_ESTIMATOR_INPUTS = 4096;
export const MAX_ESTIMATOR_HIDDEN = 64;

const Weights = (rows: number, cols: number) => Type.Array(Type.Array(Type.Number(), { maxItems: cols }), { maxItems: rows });

/** What `ballast train` stores in metadata.json (`lossEstimator`) for a regression version. */
export const LossEstimatorSchema = Type.Object({
  method: Type.Literal("dle-mlp"),
  /**
   * Inputs, in order: the served model's encoded features (its standardisation and one-hot encoding), then the
   * prediction standardised by the target's mean and std.
   */
  inputs: Type.Integer({ minimum: 1, maximum: MAX_ESTIMATOR_INPUTS }),
  /** One ReLU hidden layer: weights[input][unit], bias[unit]. */
  hidden: Type.Object({ weights: Weights(MAX_ESTIMATOR_INPUTS, MAX_ESTIMATOR_HIDDEN), bias: Type.Array(Type.Number(), { maxItems: MAX_ESTIMATOR_HIDDEN }) }),
  /** Softplus output: weights[unit][k], bias[k], k = 0 the |error| and 1 the error², both in units of `scale`. */
  output: Type.Object({ weights: Weights(MAX_ESTIMATOR_HIDDEN, 2), bias: Type.Array(Type.Number(), { minItems: 2, maxItems: 2 }) }),
  /** The target's std: predicted errors are in its units. */
  scale: Type.Number({ exclusiveMinimum: 0 }),
  /** Rows fitted on: the holdout and validation rows (the model never trained on them). */
  rows: Type.Integer({ minimum: 0 }),
  /** On those rows: the realised MAE and the mean estimated |error|, for a reader to judge the fit. */
  realisedMae: Type.Number({ minimum: 0 }),
  estimatedMae: Type.Number({ minimum: 0 }),
});

export type LossEstimatorJSON = Static<typeof LossEstimatorSchema>;

/** A window's predicted errors in additive form. */
export interface LossEstimateJSON {
  rows: number;
  sumAbsError: number;
  sumSquaredError: number;
}

export class LossEstimatorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LossEstimatorError";
  }
}

/** The estimator's input row: the model's encoded inputs, then its prediction standardised by the target. */
export function lossEstimatorInput(encoded: ArrayLike<number>, prediction: number, target: { mean: number; std: number }): Float64Array {
  const out = new Float64Array(encoded.length + 1);
  for (let i = 0; i < encoded.length; i++) out[i] = encoded[i]!;
  out[encoded.length] = (prediction - target.mean) / target.std;
  return out;
}

function softplus(x: number): number {
  return x > 30 ? x : Math.log1p(Math.exp(x));
}

/** The stored estimator, ready to predict one row's absolute and squared error. */
export class LossEstimator {
  private readonly w1: Float64Array;
  private readonly b1: Float64Array;
  private readonly w2: Float64Array;
  private readonly b2: Float64Array;
  private readonly units: number;
  private readonly hidden: Float64Array;

  constructor(readonly json: LossEstimatorJSON) {
    const first = Value.Errors(LossEstimatorSchema, json).First();
    if (first) throw new LossEstimatorError(`loss estimator ${first.path || "/"}: ${first.message}`);
    const units = json.hidden.bias.length;
    if (json.hidden.weights.length !== json.inputs || json.hidden.weights.some((r) => r.length !== units))
      throw new LossEstimatorError(`loss estimator: hidden.weights must be ${json.inputs}×${units}`);
    if (json.output.weights.length !== units || json.output.weights.some((r) => r.length !== 2))
      throw new LossEstimatorError(`loss estimator: output.weights must be ${units}×2`);
    this.units = units;
    this.w1 = Float64Array.from(json.hidden.weights.flat());
    this.b1 = Float64Array.from(json.hidden.bias);
    this.w2 = Float64Array.from(json.output.weights.flat());
    this.b2 = Float64Array.from(json.output.bias);
    this.hidden = new Float64Array(units);
  }

  get inputs(): number {
    return this.json.inputs;
  }

  /** Predicted |error| and error² of one row, in the target's units; `x` holds `inputs` numbers. */
  predict(x: ArrayLike<number>): { absError: number; squaredError: number } {
    const n = this.json.inputs;
    if (x.length !== n) throw new RangeError(`expected ${n} inputs, got ${x.length}`);
    this.hidden.set(this.b1);
    for (let i = 0; i < n; i++) {
      const v = x[i]!;
      if (v === 0) continue;
      for (let u = 0; u < this.units; u++) this.hidden[u]! += v * this.w1[i * this.units + u]!;
    }
    let a = this.b2[0]!;
    let b = this.b2[1]!;
    for (let u = 0; u < this.units; u++) {
      const h = Math.max(0, this.hidden[u]!);
      a += h * this.w2[u * 2]!;
      b += h * this.w2[u * 2 + 1]!;
    }
    const s = this.json.scale;
    return { absError: softplus(a) * s, squaredError: softplus(b) * s * s };
  }
}

/** Sums of a window's predicted errors. */
export class LossEstimate {
  rows = 0;
  sumAbsError = 0;
  sumSquaredError = 0;

  add(predicted: { absError: number; squaredError: number }): void {
    this.rows++;
    this.sumAbsError += predicted.absError;
    this.sumSquaredError += predicted.squaredError;
  }

  toJSON(): LossEstimateJSON {
    return { rows: this.rows, sumAbsError: this.sumAbsError, sumSquaredError: this.sumSquaredError };
  }
}

export function mergeLossEstimates(a: LossEstimateJSON | undefined, b: LossEstimateJSON | undefined): LossEstimateJSON | undefined {
  if (!a || !b) return a ?? b;
  return { rows: a.rows + b.rows, sumAbsError: a.sumAbsError + b.sumAbsError, sumSquaredError: a.sumSquaredError + b.sumSquaredError };
}

/** Flat metrics of a window's loss estimate: estimatedSamples, estimatedMae, estimatedRmse; nothing without rows. */
export function estimatedLossMetrics(estimate: LossEstimateJSON | undefined): Record<string, number> {
  if (!estimate || estimate.rows === 0) return {};
  return {
    estimatedSamples: estimate.rows,
    estimatedMae: estimate.sumAbsError / estimate.rows,
    estimatedRmse: Math.sqrt(estimate.sumSquaredError / estimate.rows),
  };
}
