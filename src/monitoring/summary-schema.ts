// The shape a sidecar summary must have before anything merges it: what `GET /v1/monitoring/summary` answers is
// untrusted input to the operator (another version, a bug, or whoever listens on the pod's IP), so it is checked
// whole — shape, bounds, profiles — and a bad one is refused with the first error, never half-merged.
import { Type, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { DatasetProfile } from "./dataset-profile.js";
import { ReconstructionBandSchema } from "./multivariate-drift.js";
import { ConfusionMatrix } from "./performance.js";
import { ProfileFormatError, type FeatureType } from "./schema.js";
import { ShadowSummarySchema } from "./shadow-summary.js";
import { SUMMARY_FORMAT, type SidecarSummary } from "./summary.js";
import { THRESHOLD_MODES } from "../vocabulary/drift.js";

/** A summary that does not parse; `message` names the first bad field, e.g. `summary windows.0.rows: Expected integer`. */
export class SummaryFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SummaryFormatError";
  }
}

/** Windows a summary may carry (the sidecar keeps 12 closed ones by default). */
export const MAX_SUMMARY_WINDOWS = 1000;

// Counters end up in status as int64; anything beyond 2^53 is not a count JavaScript can add.
const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
// RFC 3339 as toISOString writes it: the CRD's date-time fields (windowStart, windowEnd) take it as is.
const Timestamp = Type.String({ pattern: "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$", maxLength: 40 });
const NullableNumber = Type.Union([Type.Number(), Type.Null()]);
const Text = (maxLength: number) => Type.String({ maxLength });

const FeatureDriftSchema = Type.Object({
  name: Text(1024),
  type: Type.Union([Type.Literal("numeric"), Type.Literal("categorical")]),
  method: Text(64),
  statistic: NullableNumber,
  pValue: Type.Optional(NullableNumber),
  adjustedPValue: Type.Optional(NullableNumber),
  threshold: Type.Number(),
  // Absent from sidecars older than calibrated thresholds.
  thresholdMode: Type.Optional(Type.Union(THRESHOLD_MODES.map((m) => Type.Literal(m)))),
  drift: Type.Boolean(),
  status: Type.Union([Type.Literal("evaluated"), Type.Literal("insufficient-data")]),
  reason: Text(4096),
  referenceCount: Type.Optional(Count),
  currentCount: Type.Optional(Count),
  currentMissingShare: Type.Optional(Type.Number()),
  unseenShare: Type.Optional(Type.Number()),
  wassersteinRaw: Type.Optional(NullableNumber),
  approximate: Type.Optional(Type.Boolean()),
  rankErrorBound: Type.Optional(Type.Number()),
});

const DriftReportSchema = Type.Object({
  drift: Type.Boolean(),
  driftShare: Type.Number({ minimum: 0, maximum: 1 }),
  driftShareThreshold: Type.Number(),
  driftedFeatures: Count,
  evaluatedFeatures: Count,
  status: Type.Union([Type.Literal("evaluated"), Type.Literal("insufficient-data")]),
  correction: Text(64),
  features: Type.Array(FeatureDriftSchema),
  prediction: Type.Array(FeatureDriftSchema),
  predictionDrift: Type.Boolean(),
});

const Sum = Type.Number();
const LabelledSchema = Type.Union([
  Type.Object({ task: Type.Literal("classification"), confusion: Type.Object({ cells: Type.Record(Type.String(), Count) }) }),
  Type.Object({
    task: Type.Literal("regression"),
    regression: Type.Object({ count: Count, sumAbsError: Sum, sumSquaredError: Sum, meanActual: Sum, m2Actual: Sum }),
  }),
]);

/** Classes of a classifier's estimate: the matrix is classes², so bounded well below what would fill memory. */
export const MAX_ESTIMATE_CLASSES = 256;
const EstimateSchema = Type.Object({
  classes: Type.Array(Text(1024), { minItems: 2, maxItems: MAX_ESTIMATE_CLASSES }),
  rows: Count,
  expected: Type.Array(Type.Array(Type.Number({ minimum: 0 }), { maxItems: MAX_ESTIMATE_CLASSES }), { maxItems: MAX_ESTIMATE_CLASSES }),
});

const ReconstructionSchema = Type.Object({ rows: Count, sumError: Type.Number({ minimum: 0 }), band: ReconstructionBandSchema });

const LossEstimateSchema = Type.Object({ rows: Count, sumAbsError: Type.Number({ minimum: 0 }), sumSquaredError: Type.Number({ minimum: 0 }) });

const WindowSchema = Type.Object({
  start: Timestamp,
  end: Timestamp,
  closed: Type.Boolean(),
  requests: Count,
  failedRequests: Count,
  rejectedRequests: Count,
  rows: Count,
  // Profiles are checked by DatasetProfile.fromJSON, which names the bad field the same way.
  features: Type.Unknown(),
  predictions: Type.Unknown(),
  labelled: LabelledSchema,
  estimate: Type.Optional(EstimateSchema),
  lossEstimate: Type.Optional(LossEstimateSchema),
  reconstruction: Type.Optional(ReconstructionSchema),
  support: Type.Optional(
    Type.Object({ rows: Count, outside: Count, expectedShare: Type.Number({ minimum: 0, maximum: 1 }), expectedShareSd: Type.Number({ minimum: 0 }) }),
  ),
  // `samples` becomes status.lastMetrics.labelledSamples (an int64 ≥ 0); the rest are metric values.
  metrics: Type.Object({ samples: Type.Optional(Count) }, { additionalProperties: Type.Number() }),
  drift: Type.Union([DriftReportSchema, Type.Null()]),
});

const Totals = Type.Object(
  {
    requests: Count,
    failedRequests: Count,
    rejectedRequests: Count,
    rows: Count,
    feedback: Count,
    feedbackRejected: Count,
  },
  // Counters added later (logDropped*) are counts too; older sidecars lack them.
  { additionalProperties: Count },
);

export const SidecarSummarySchema = Type.Object({
  format: Type.Literal(SUMMARY_FORMAT),
  pod: Text(253),
  model: Text(253),
  // A store version name of at most 63 characters: status.servingVersion and recentWindows[].version (maxLength 63) take it as is.
  version: Type.String({ pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$" }),
  task: Type.Union([Type.Literal("classification"), Type.Literal("regression")]),
  generatedAt: Timestamp,
  totals: Totals,
  windows: Type.Array(WindowSchema, { maxItems: MAX_SUMMARY_WINDOWS }),
  shadow: Type.Optional(ShadowSummarySchema),
});

function clip(text: string, max = 200): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function firstError(schema: TSchema, value: unknown): string | undefined {
  if (Value.Check(schema, value)) return undefined;
  const first = Value.Errors(schema, value).First();
  // Paths name object keys, and keys are input too: a path is clipped like any text we repeat.
  const path = first?.path ? clip(first.path.slice(1).replaceAll("/", ".")) : "";
  return `summary${path ? ` ${path}` : ""}: ${first?.message ?? "invalid"}`;
}

/** The feature types of a summary's windows, which every window must agree on. */
export function summaryFeatureTypes(summary: SidecarSummary): Map<string, FeatureType> {
  const types = new Map<string, FeatureType>();
  for (const w of summary.windows) for (const f of [...w.features.schema, ...w.predictions.schema]) if (!types.has(f.name)) types.set(f.name, f.type);
  return types;
}

/**
 * Parses what a sidecar answered: the schema above, every profile (DatasetProfile.fromJSON), and that its
 * windows agree with each other (one task, one type per feature), so merging it cannot throw.
 * Throws SummaryFormatError naming the first bad field.
 */
export function parseSidecarSummary(body: unknown): SidecarSummary {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new SummaryFormatError("summary (root): not a JSON object");
  const format = (body as { format?: unknown }).format;
  if (format !== SUMMARY_FORMAT) throw new SummaryFormatError(`summary format is ${clip(JSON.stringify(format) ?? "absent")}, expected ${SUMMARY_FORMAT}`);
  const shapeError = firstError(SidecarSummarySchema, body);
  if (shapeError) throw new SummaryFormatError(shapeError);
  const summary = body as SidecarSummary;
  const types = new Map<string, FeatureType>();
  summary.windows.forEach((w, i) => {
    if (w.labelled.task !== summary.task)
      throw new SummaryFormatError(`summary windows.${i}.labelled.task: is ${w.labelled.task}, the summary's task is ${summary.task}`);
    if (w.labelled.task === "classification") {
      try {
        ConfusionMatrix.fromJSON(w.labelled.confusion);
      } catch (err) {
        throw new SummaryFormatError(`summary windows.${i}.labelled.confusion: ${clip(err instanceof Error ? err.message : String(err), 300)}`);
      }
    }
    if (w.estimate) {
      if (summary.task !== "classification") throw new SummaryFormatError(`summary windows.${i}.estimate: only a classification summary has one`);
      const k = w.estimate.classes.length;
      if (w.estimate.expected.length !== k || w.estimate.expected.some((row) => row.length !== k))
        throw new SummaryFormatError(`summary windows.${i}.estimate.expected: must be a ${k}×${k} matrix, one row and column per class`);
      const classes = JSON.stringify(w.estimate.classes);
      const first = summary.windows.find((x) => x.estimate)!.estimate!;
      if (classes !== JSON.stringify(first.classes)) throw new SummaryFormatError(`summary windows.${i}.estimate.classes: differ from an earlier window's`);
    }
    if (w.lossEstimate && summary.task !== "regression") throw new SummaryFormatError(`summary windows.${i}.lossEstimate: only a regression summary has one`);
    if (w.support && w.support.outside > w.support.rows)
      throw new SummaryFormatError(`summary windows.${i}.support.outside: ${w.support.outside} rows outside of ${w.support.rows} checked`);
    const band = w.reconstruction?.band;
    if (band && band.windowSizes.length !== band.std.length)
      throw new SummaryFormatError(`summary windows.${i}.reconstruction.band: needs one std per window size`);
    const firstBand = summary.windows.find((x) => x.reconstruction)?.reconstruction?.band;
    if (band && JSON.stringify(band) !== JSON.stringify(firstBand))
      throw new SummaryFormatError(`summary windows.${i}.reconstruction.band: differs from an earlier window's`);
    for (const part of ["features", "predictions"] as const) {
      try {
        for (const f of DatasetProfile.fromJSON(w[part]).schema) {
          const seen = types.get(f.name);
          if (seen !== undefined && seen !== f.type)
            throw new ProfileFormatError(`feature ${clip(f.name, 128)} is ${f.type} here and ${seen} in an earlier window`);
          types.set(f.name, f.type);
        }
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new SummaryFormatError(`summary windows.${i}.${part}: ${clip(message.replace(/^profile /, ""), 300)}`);
      }
    }
  });
  return summary;
}

/**
 * Why `b` cannot merge with `a` (another model or version, task, or a feature typed differently), or undefined.
 * Both must have passed parseSidecarSummary.
 */
export function summaryConflict(a: SidecarSummary, b: SidecarSummary): string | undefined {
  if (a.model !== b.model || a.version !== b.version) return `serves ${clip(b.model, 64)}/${b.version}, not ${clip(a.model, 64)}/${a.version}`;
  if (a.task !== b.task) return `is a ${b.task} summary, not ${a.task}`;
  const classesOf = (s: SidecarSummary) => JSON.stringify(s.windows.find((w) => w.estimate)?.estimate?.classes ?? null);
  if (classesOf(a) !== "null" && classesOf(b) !== "null" && classesOf(a) !== classesOf(b)) return "estimates over other classes";
  const bandOf = (s: SidecarSummary) => JSON.stringify(s.windows.find((w) => w.reconstruction)?.reconstruction?.band ?? null);
  if (bandOf(a) !== "null" && bandOf(b) !== "null" && bandOf(a) !== bandOf(b)) return "reconstruction errors against another multivariate reference";
  const mine = summaryFeatureTypes(a);
  for (const [name, type] of summaryFeatureTypes(b)) {
    const other = mine.get(name);
    if (other !== undefined && other !== type) return `feature ${clip(name, 128)} is ${type}, not ${other}`;
  }
  return undefined;
}
