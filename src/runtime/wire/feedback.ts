// The body of `POST /v1/feedback` as a wire type: one item, an array of items, or {"feedback": [...]}. This module
// checks the shape only; whether the id is known and the label fits the model is the traffic monitor's business.
import { Type, type Static } from "@sinclair/typebox";
import { MAX_REQUEST_ID_LENGTH } from "../oip.js";
import { Refusal } from "../refusal.js";
import { wireChecker } from "./checker.js";

const MAX_FEEDBACK_ITEMS = 10_000;
/** Longer strings cannot be a class name or a number; the bound keeps them out of error messages too. */
const MAX_LABEL_STRING_LENGTH = 1024;

const LabelSchema = Type.Union([Type.String({ maxLength: MAX_LABEL_STRING_LENGTH }), Type.Number(), Type.Boolean()], {
  errorMessage: `must be a class name or a number (a string of at most ${MAX_LABEL_STRING_LENGTH} characters, a number or a boolean)`,
});

export const FeedbackItemSchema = Type.Object(
  {
    id: Type.String({
      minLength: 1,
      maxLength: MAX_REQUEST_ID_LENGTH,
      errorMessage: `must be the non-empty request id of an inference (the response's "id", at most ${MAX_REQUEST_ID_LENGTH} characters)`,
    }),
    label: Type.Optional(LabelSchema),
    row: Type.Optional(Type.Integer({ minimum: 0, errorMessage: "must be a row number of the request (an integer from 0)" })),
    labels: Type.Optional(Type.Array(LabelSchema, { minItems: 1, errorMessage: "must be a non-empty array of labels, one per row of the request" })),
  },
  { additionalProperties: false, errorMessage: 'must be an object {"id": ..., "label": ...}' },
);

const EnvelopeSchema = Type.Object(
  { feedback: Type.Array(Type.Unknown(), { errorMessage: 'must be an array of {"id": ..., "label": ...}' }) },
  { additionalProperties: false },
);

export type FeedbackLabel = Static<typeof LabelSchema>;
const itemProblem = wireChecker(FeedbackItemSchema);
const envelopeProblem = wireChecker(EnvelopeSchema);

/** One item of a feedback body, named as the caller wrote it (`feedback` or `feedback[3]`), with one of its two forms. */
export type FeedbackItem = { where: string; id: string } & ({ labels: FeedbackLabel[] } | { label: FeedbackLabel; row?: number });

function invalid(message: string): never {
  throw new Refusal("invalid", message);
}

/** The items of a feedback body, in order; throws Refusal("invalid") naming the first field that does not fit. */
export function parseFeedbackBody(body: unknown): FeedbackItem[] {
  let items: unknown[];
  let batch = true;
  if (Array.isArray(body)) items = body;
  else if (typeof body === "object" && body !== null && "feedback" in body) {
    const problem = envelopeProblem(body);
    if (problem) invalid(problem);
    items = (body as Static<typeof EnvelopeSchema>).feedback;
  } else {
    items = [body];
    batch = false;
  }
  if (items.length === 0) invalid("feedback batch is empty");
  if (items.length > MAX_FEEDBACK_ITEMS) invalid(`feedback batch of ${items.length} items exceeds ${MAX_FEEDBACK_ITEMS}`);
  return items.map((item, i) => {
    const where = batch ? `feedback[${i}]` : "feedback";
    const problem = itemProblem(item, where);
    if (problem) invalid(problem);
    const { id, label, row, labels } = item as Static<typeof FeedbackItemSchema>;
    if (labels !== undefined) {
      if (label !== undefined || row !== undefined) invalid(`${where}: give either "labels" (one per row) or "label" (+ "row"), not both`);
      return { where, id, labels };
    }
    if (label === undefined) invalid(`${where}: "label" is required (the ground truth of request "${id}")`);
    return { where, id, label, ...(row !== undefined ? { row } : {}) };
  });
}
