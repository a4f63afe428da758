// A dataset profile: one mergeable profile per feature, built from rows, serialized as compact JSON.
import { Type, type Static } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { CategoricalProfile, type CategoricalProfileJSON, type CategoricalProfileOptions } from "./categorical-profile.js";
import { NumericProfile, type NumericProfileJSON, type NumericProfileOptions } from "./numeric-profile.js";
import { ProfileFormatError, type FeatureSchema } from "./schema.js";

export type FeatureProfile = NumericProfile | CategoricalProfile;
export type FeatureProfileJSON = NumericProfileJSON | CategoricalProfileJSON;
export type ProfileOptions = NumericProfileOptions & CategoricalProfileOptions;

export const PROFILE_FORMAT_VERSION = 1;

const Count = Type.Integer({ minimum: 0 });
const SketchSchema = Type.Object({
  k: Type.Integer({ minimum: 8, maximum: 65535 }),
  n: Count,
  rng: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
  levels: Type.Array(Count),
  items: Type.String(),
});
const NumericSchema = Type.Object({
  type: Type.Literal("numeric"),
  count: Count,
  missing: Count,
  nonFinite: Count,
  invalid: Count,
  min: Type.Union([Type.Number(), Type.Null()]),
  max: Type.Union([Type.Number(), Type.Null()]),
  mean: Type.Number(),
  m2: Type.Number({ minimum: 0 }),
  exactLimit: Type.Union([Count, Type.Null()]),
  sketchK: Type.Integer({ minimum: 8, maximum: 65535 }),
  values: Type.Optional(Type.String()),
  sketch: Type.Optional(SketchSchema),
});
const CategoricalSchema = Type.Object({
  type: Type.Literal("categorical"),
  count: Count,
  missing: Count,
  invalid: Count,
  maxCategories: Type.Integer({ minimum: 1 }),
  counts: Type.Record(Type.String(), Count),
  hashed: Type.Optional(Type.Record(Type.String(), Count)),
  other: Type.Optional(Count),
});
const DatasetSchema = Type.Object({
  version: Type.Literal(PROFILE_FORMAT_VERSION),
  rows: Count,
  schema: Type.Array(Type.Object({ name: Type.String(), type: Type.Union([Type.Literal("numeric"), Type.Literal("categorical")]) })),
  features: Type.Record(Type.String(), Type.Unknown()),
});

export type DatasetProfileJSON = Omit<Static<typeof DatasetSchema>, "features"> & { features: Record<string, FeatureProfileJSON> };

function checkShape<T>(schema: Parameters<typeof Value.Check>[0], value: unknown, where: string): asserts value is T {
  if (Value.Check(schema, value)) return;
  const first = Value.Errors(schema, value).First();
  const path = first?.path ? first.path.slice(1).replaceAll("/", ".") : "";
  throw new ProfileFormatError(`${where}${path ? `.${path}` : ""}: ${first?.message ?? "invalid"}`);
}

function newFeatureProfile(feature: FeatureSchema, options: ProfileOptions): FeatureProfile {
  return feature.type === "numeric" ? new NumericProfile(options) : new CategoricalProfile(options);
}

export class DatasetProfile {
  readonly schema: readonly FeatureSchema[];
  readonly features = new Map<string, FeatureProfile>();
  rows = 0;

  constructor(schema: readonly FeatureSchema[], options: ProfileOptions = {}) {
    const seen = new Set<string>();
    for (const feature of schema) {
      if (seen.has(feature.name)) throw new RangeError(`feature "${feature.name}" appears twice in the schema`);
      seen.add(feature.name);
      this.features.set(feature.name, newFeatureProfile(feature, options));
    }
    this.schema = schema.map((f) => ({ name: f.name, type: f.type }));
  }

  /** Profiles `rows` (objects keyed by feature name; absent keys count as missing). */
  static fromRows(schema: readonly FeatureSchema[], rows: Iterable<Record<string, unknown>>, options: ProfileOptions = {}): DatasetProfile {
    const profile = new DatasetProfile(schema, options);
    for (const row of rows) profile.addRow(row);
    return profile;
  }

  /**
   * Profiles column arrays (name → values, all the same length): the fast path for batches, e.g.
   * Float64Arrays of numeric features. Columns the schema lists but `columns` lacks count as missing.
   */
  static fromColumns(schema: readonly FeatureSchema[], columns: Record<string, ArrayLike<unknown>>, options: ProfileOptions = {}): DatasetProfile {
    const profile = new DatasetProfile(schema, options);
    const lengths = new Set(Object.values(columns).map((c) => c.length));
    if (lengths.size > 1) throw new RangeError(`columns have different lengths: ${[...lengths].join(", ")}`);
    const rows = lengths.size === 1 ? [...lengths][0]! : 0;
    profile.rows = rows;
    for (const [name, feature] of profile.features) {
      const values = columns[name];
      if (values === undefined) {
        for (let i = 0; i < rows; i++) feature.add(undefined);
      } else if (feature.type === "numeric" && values instanceof Float64Array) {
        feature.addNumbers(values);
      } else if (feature.type === "categorical") {
        feature.addAll(values);
      } else {
        for (let i = 0; i < values.length; i++) feature.add(values[i]);
      }
    }
    return profile;
  }

  addRow(row: Record<string, unknown>): void {
    this.rows++;
    for (const [name, profile] of this.features) profile.add(row[name]);
  }

  feature(name: string): FeatureProfile | undefined {
    return this.features.get(name);
  }

  /** A new profile of both datasets' rows. Features in only one side keep that side's profile. */
  merge(other: DatasetProfile): DatasetProfile {
    const schema = [...this.schema];
    for (const f of other.schema) {
      const mine = this.schema.find((s) => s.name === f.name);
      if (!mine) schema.push(f);
      else if (mine.type !== f.type) throw new RangeError(`feature "${f.name}" is ${mine.type} in one profile and ${f.type} in the other`);
    }
    const out = new DatasetProfile(schema);
    out.rows = this.rows + other.rows;
    for (const { name } of schema) {
      const a = this.features.get(name);
      const b = other.features.get(name);
      out.features.set(name, mergeFeature(a, b));
    }
    return out;
  }

  toJSON(): DatasetProfileJSON {
    const features: Record<string, FeatureProfileJSON> = {};
    for (const [name, profile] of this.features) features[name] = profile.toJSON();
    return { version: PROFILE_FORMAT_VERSION, rows: this.rows, schema: this.schema.map((f) => ({ ...f })), features };
  }

  /** Parses a serialized profile; throws ProfileFormatError naming the offending field. */
  static fromJSON(json: unknown): DatasetProfile {
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ProfileFormatError("profile (root): expected an object");
    checkShape<Static<typeof DatasetSchema>>(DatasetSchema, json, "profile");
    const profile = new DatasetProfile(json.schema);
    profile.rows = json.rows;
    for (const feature of json.schema) {
      const where = `profile features.${feature.name}`;
      const data: unknown = json.features[feature.name];
      if (data === undefined) throw new ProfileFormatError(`${where}: missing (the schema lists it)`);
      try {
        if (feature.type === "numeric") {
          checkShape<NumericProfileJSON>(NumericSchema, data, where);
          profile.features.set(feature.name, NumericProfile.fromJSON(data, where));
        } else {
          checkShape<CategoricalProfileJSON>(CategoricalSchema, data, where);
          profile.features.set(feature.name, CategoricalProfile.fromJSON(data, where));
        }
      } catch (err) {
        if (err instanceof ProfileFormatError) throw err;
        throw new ProfileFormatError(err instanceof Error ? err.message : String(err));
      }
    }
    return profile;
  }
}

function mergeFeature(a: FeatureProfile | undefined, b: FeatureProfile | undefined): FeatureProfile {
  if (a && b) {
    if (a.type === "numeric" && b.type === "numeric") return a.merge(b);
    if (a.type === "categorical" && b.type === "categorical") return a.merge(b);
  }
  const only = (a ?? b)!;
  return only.type === "numeric"
    ? only.merge(new NumericProfile({ exactLimit: only.exactLimit, sketchK: only.sketchK }))
    : only.merge(new CategoricalProfile({ maxCategories: only.maxCategories }));
}
