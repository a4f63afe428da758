// The wire contract between `ballast train` and the operator: the JSON a retraining pod leaves in its
// termination message (≤ 4096 bytes). The trainer writes it (src/training/result.ts); the operator reads
// it and never the model store. Pure: TypeBox only.
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";

export const TRAIN_RESULT_FORMAT = "ballast.dev/train-result/v1";
/** Kubernetes keeps at most this many bytes of a termination message. */
export const MAX_TERMINATION_MESSAGE_BYTES = 4096;

const NullableNumber = Type.Union([Type.Number(), Type.Null()]);
const HoldoutComparisonSchema = Type.Object({
  rows: Type.Integer({ minimum: 0 }),
  /** The metric on these rows; null when there are none (serving: also without a parent). */
  candidate: NullableNumber,
  serving: NullableNumber,
});

export const TrainSuccessSchema = Type.Object({
  format: Type.Literal(TRAIN_RESULT_FORMAT),
  /** The version written (with `-<shard>` when the search is sharded). */
  version: Type.String({ minLength: 1 }),
  parentVersion: Type.Union([Type.String(), Type.Null()]),
  model: Type.String({ minLength: 1 }),
  metric: Type.String({ minLength: 1 }),
  higherIsBetter: Type.Boolean(),
  backend: Type.String(),
  /** Newest labelled feedback, never trained on. */
  recent: HoldoutComparisonSchema,
  /** The first version's holdout: the forgetting check. */
  original: HoldoutComparisonSchema,
  latencyMsPerRow: Type.Object({ candidate: Type.Number({ minimum: 0 }), serving: NullableNumber }),
  /** The selected trial's metric on the validation split of the training rows (compare shards on this). */
  validation: NullableNumber,
  trainRows: Type.Integer({ minimum: 0 }),
  feedbackRows: Type.Integer({ minimum: 0 }),
  /** The trials this process ran, in search order (the list may be shortened to fit). */
  trials: Type.Array(Type.Object({ name: Type.String(), validation: NullableNumber })),
});

export const TrainFailureSchema = Type.Object({
  format: Type.Literal(TRAIN_RESULT_FORMAT),
  error: Type.String(),
});

export const TrainResultMessageSchema = Type.Union([TrainSuccessSchema, TrainFailureSchema]);

export type TrainSuccess = Static<typeof TrainSuccessSchema>;
export type TrainFailure = Static<typeof TrainFailureSchema>;
export type TrainResultMessage = Static<typeof TrainResultMessageSchema>;

export class TrainResultError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TrainResultError";
  }
}

export function isTrainFailure(result: TrainResultMessage): result is TrainFailure {
  return "error" in result;
}

/** Parses and validates a termination message; errors name the field. */
export function parseTrainResult(text: string): TrainResultMessage {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TrainResultError(`train result is not JSON: ${(err as Error).message}`);
  }
  const schema = typeof value === "object" && value !== null && "error" in value ? TrainFailureSchema : TrainSuccessSchema;
  const first = Value.Errors(schema, value).First();
  if (first) throw new TrainResultError(`train result ${first.path || "/"}: ${first.message}`);
  return value as TrainResultMessage;
}
