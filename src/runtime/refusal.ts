// Why the runtime refused a request, in its own terms: decoding, the feedback index and the request log say what
// went wrong; only src/runtime/http-errors.ts decides which HTTP status that is.

/**
 * - invalid: the input does not fit the schema or the model (a field, a feature, a label)
 * - too-large: more rows or items than the configured limit
 * - unknown-id: feedback for a request this process never served, or has forgotten
 * - duplicate: feedback for a row that already has some
 * - not-recorded: the input was fine but could not be stored durably; retrying may succeed
 */
export type RefusalKind = "invalid" | "too-large" | "unknown-id" | "duplicate" | "not-recorded";

export class Refusal extends Error {
  constructor(
    readonly kind: RefusalKind,
    message: string,
  ) {
    super(message);
    this.name = "Refusal";
  }
}
