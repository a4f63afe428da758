// Building blocks for Kubernetes structural schemas in TypeBox: every helper emits only what the
// apiextensions.k8s.io/v1 validator accepts (no const, no patternProperties, draft-4 style bounds).
import {
  CloneType,
  Type,
  type Evaluate,
  type Static,
  type TArray,
  type TObject,
  type TOptional,
  type TProperties,
  type TSchema,
  type TUnsafe,
} from "@sinclair/typebox";
import { DURATION_PATTERN } from "./duration.js";

/** One CEL rule as the API server reads it (`x-kubernetes-validations` item). */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

// Type-level marker only: a property that has a schema default is optional in what users write
// but always present once the API server (or applyModelDeploymentDefaults) has defaulted it.
declare const hasDefault: unique symbol;
export type TDefaulted<T extends TSchema> = TOptional<T> & { readonly [hasDefault]: true };

/** Suffix added to a defaulted field's description; `kubectl explain` shows descriptions, not defaults. */
export function defaultNote(value: unknown): string {
  if (typeof value === "object" && value !== null && Object.keys(value).length === 0) return "";
  return ` Default: ${typeof value === "object" ? JSON.stringify(value) : String(value)}.`;
}

/** Marks `schema` optional with a default the API server fills in. */
export function withDefault<T extends TSchema>(schema: T, value: Static<T>): TDefaulted<T> {
  // CloneType's options never override the schema's own keys, so set them on the clone.
  const clone: TSchema = CloneType(schema);
  clone.default = value;
  clone.description = `${schema.description ?? ""}${defaultNote(value)}`;
  return Type.Optional(clone) as TDefaulted<T>;
}

type IsDefaulted<S> = S extends { readonly [hasDefault]: true } ? true : false;
type IsOptional<S> = S extends TOptional<TSchema> ? true : false;

/** The static type after defaulting: defaulted properties become required, recursively. */
export type Resolved<S> =
  S extends TObject<infer P> ? ResolvedProperties<P> : S extends TArray<infer I> ? Resolved<I>[] : S extends TSchema ? Static<S> : never;

type ResolvedProperties<P extends TProperties> = Evaluate<
  {
    -readonly [K in keyof P as IsDefaulted<P[K]> extends true ? K : IsOptional<P[K]> extends true ? never : K]-?: Resolved<P[K]>;
  } & {
    -readonly [K in keyof P as IsDefaulted<P[K]> extends true ? never : IsOptional<P[K]> extends true ? K : never]?: Resolved<P[K]>;
  }
>;

/** A string restricted to `values` (an OpenAPI enum; TypeBox unions would emit `anyOf`/`const`). */
export function stringEnum<const V extends readonly string[]>(values: V, description: string): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ type: "string", enum: [...values], description });
}

/** A map of string to string (`additionalProperties`, never `patternProperties`). */
export function stringMap(description: string, maxProperties: number): TUnsafe<Record<string, string>> {
  return Type.Unsafe<Record<string, string>>({
    type: "object",
    additionalProperties: { type: "string", maxLength: 1024 },
    maxProperties,
    description,
  });
}

/** A number with a strict lower bound, expressed the draft-4 way the API server understands. */
export function positiveNumber(description: string, extra: { maximum?: number; default?: number } = {}): TUnsafe<number> {
  return Type.Unsafe<number>({ type: "number", minimum: 0, exclusiveMinimum: true, ...extra, description });
}

/** An object Kubernetes stores as given (for large core types validated when the operator applies pods). */
export function opaqueObject<T>(description: string): TUnsafe<T> {
  return Type.Unsafe<T>({ type: "object", "x-kubernetes-preserve-unknown-fields": true, description });
}

// resource.Quantity as controller-gen writes it, so `kubectl explain` and validation match core types.
const quantityPattern = "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$";

/** A core ResourceList: resource name → quantity (integer or string like "500m", "1Gi"). */
export function resourceList(description: string): TUnsafe<Record<string, string | number>> {
  return Type.Unsafe<Record<string, string | number>>({
    type: "object",
    additionalProperties: {
      anyOf: [{ type: "integer" }, { type: "string" }],
      pattern: quantityPattern,
      "x-kubernetes-int-or-string": true,
    },
    maxProperties: 16,
    description,
  });
}

/** A duration in the one grammar (src/api/duration.ts), which CEL's duration() parses: "30s", "5m", "1h30m", "250ms". */
export function durationString(description: string): TUnsafe<string> {
  return Type.Unsafe<string>({
    type: "string",
    pattern: DURATION_PATTERN,
    maxLength: 32,
    description,
  });
}
