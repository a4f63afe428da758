// Holdout hygiene: which rows train, which select the model, and which are kept back to judge it — the
// recent holdout (newest feedback, stratified over time) and the original holdout (carried forward forever).
import { toCategory, toNumber, type FeatureSpec } from "../runtime/features.js";
import { DataError, parseJsonLines } from "./data.js";
import type { Task } from "./preprocess.js";
import { permutation, splitIndices } from "./split.js";

export type HoldoutSet = "recent" | "original";

/** At most this many time strata: each stands for the monitoring windows its rows came from. */
export const MAX_STRATA = 10;

export interface SplitExample {
  /** `--data` rows, labelled feedback, or the parent's original holdout rows (carried forward). */
  source: "data" | "feedback" | "carried";
  /** Feedback: when the prediction was made (ms). */
  ts?: number;
  /** Canonical features + label (see `rowKey`): equal keys are the same example. */
  key: string;
}

export interface SplitPlan {
  train: number[];
  /** Early stopping and choosing among trials: training rows only, never a holdout. */
  validation: number[];
  recent: number[];
  original: number[];
  /** Training rows dropped because they equal an original holdout row. */
  droppedAsOriginal: number;
}

export interface Stratum {
  /** Time range (ms) and rows of the stratum, and how many of them were held out. */
  from: number;
  to: number;
  rows: number;
  held: number;
}

/**
 * A `fraction` of rows taken from every time stratum: rows sorted by time, cut into up to MAX_STRATA
 * equal-count strata (never more than the rows to hold out, so each stratum gives at least one). Returns
 * indices into `ts`.
 */
export function stratifiedHoldout(ts: readonly number[], fraction: number, random: () => number): { holdout: number[]; strata: Stratum[] } {
  const n = ts.length;
  const wanted = Math.round(n * fraction);
  if (wanted === 0) return { holdout: [], strata: [] };
  const order = Array.from(ts.keys()).sort((a, b) => ts[a]! - ts[b]! || a - b);
  const count = Math.min(MAX_STRATA, wanted);
  const holdout: number[] = [];
  const strata: Stratum[] = [];
  for (let s = 0; s < count; s++) {
    const lo = Math.floor((s * n) / count);
    const hi = Math.floor(((s + 1) * n) / count);
    const size = hi - lo;
    // Cumulative rounding, so the strata add up to the overall share.
    const take = Math.min(size, Math.max(1, Math.round(hi * fraction) - Math.round(lo * fraction)));
    const pick = permutation(size, random).subarray(0, take);
    for (const k of pick) holdout.push(order[lo + k]!);
    strata.push({ from: ts[order[lo]!]!, to: ts[order[hi - 1]!]!, rows: size, held: take });
  }
  return { holdout: holdout.sort((a, b) => a - b), strata };
}

/**
 * Splits every example once. With feedback: the recent holdout is a stratified `holdout` share of it; the
 * original holdout is the parent's (carried rows) or else a `holdout` share of the data rows. Without feedback:
 * today's single split of the data rows, whose holdout is the original one (or, when the parent carries an
 * original holdout, the recent one). Training rows equal to a carried row are dropped: the parent never saw
 * them, and neither may its descendants. Validation is a `validation` share of what is left to train on.
 */
export function planSplit(examples: readonly SplitExample[], options: { holdout: number; validation: number; random: () => number }): SplitPlan {
  const { random } = options;
  const of = (source: SplitExample["source"]): number[] => examples.flatMap((e, i) => (e.source === source ? [i] : []));
  const data = of("data");
  const feedback = of("feedback");
  const carried = of("carried");
  let plan: Omit<SplitPlan, "droppedAsOriginal">;
  if (feedback.length === 0) {
    const s = splitIndices(data.length, options.holdout, options.validation, random);
    const at = (idx: number[]): number[] => idx.map((k) => data[k]!);
    plan = {
      train: at(s.train),
      validation: at(s.validation),
      recent: carried.length > 0 ? at(s.holdout) : [],
      original: carried.length > 0 ? carried : at(s.holdout),
    };
  } else {
    const recent = stratifiedHoldout(
      feedback.map((i) => examples[i]!.ts ?? 0),
      options.holdout,
      random,
    ).holdout.map((k) => feedback[k]!);
    let original = carried;
    if (carried.length === 0) {
      const order = permutation(data.length, random);
      original = Array.from(order.subarray(0, Math.round(data.length * options.holdout)), (k) => data[k]!).sort((a, b) => a - b);
    }
    const held = new Set([...recent, ...original]);
    const pool = [...data, ...feedback].filter((i) => !held.has(i));
    const order = Array.from(permutation(pool.length, random), (k) => pool[k]!);
    const validationSize = pool.length === 0 ? 0 : Math.max(1, Math.round(pool.length * options.validation));
    plan = { train: order.slice(validationSize), validation: order.slice(0, validationSize), recent, original };
  }
  if (carried.length === 0) return { ...plan, droppedAsOriginal: 0 };
  const originalKeys = new Set(carried.map((i) => examples[i]!.key));
  const keep = (idx: number[]): number[] => idx.filter((i) => !originalKeys.has(examples[i]!.key));
  const train = keep(plan.train);
  const validation = keep(plan.validation);
  return { ...plan, train, validation, droppedAsOriginal: plan.train.length - train.length + plan.validation.length - validation.length };
}

export interface CanonicalRow {
  features: Record<string, number | string | null>;
  label: number | string | null;
}

/** Features and label as the model reads them (numbers as numbers, categories as text, missing as null). */
export function canonicalRow(features: readonly FeatureSpec[], task: Task, labelName: string, raw: Record<string, unknown>, where: () => string): CanonicalRow {
  const out: Record<string, number | string | null> = {};
  for (const f of features) {
    const v = raw[f.name];
    out[f.name] = (f.type === "numeric" ? toNumber(v, () => `${where()} feature "${f.name}"`) : toCategory(v, () => `${where()} feature "${f.name}"`)) ?? null;
  }
  const l = raw[labelName];
  const label = (task === "classification" ? toCategory(l, () => `${where()} label`) : toNumber(l, () => `${where()} label`)) ?? null;
  return { features: out, label };
}

/** Equal keys: same features (in the model's order) and same label. */
export function rowKey(features: readonly FeatureSpec[], row: CanonicalRow): string {
  return JSON.stringify([...features.map((f) => row.features[f.name] ?? null), row.label]);
}

export function holdoutLine(set: HoldoutSet, row: CanonicalRow): string {
  return JSON.stringify({ set, features: row.features, label: row.label });
}

export interface HoldoutFileRow {
  set: HoldoutSet;
  features: Record<string, unknown>;
  label: unknown;
  /** The line as stored, so carried rows are written forward byte for byte. */
  line: string;
}

/** Parses a version's holdout.jsonl; `file` names it in errors (`weather/v3/holdout.jsonl:12: ...`). */
export function parseHoldoutFile(file: string, text: string): HoldoutFileRow[] {
  return parseJsonLines(file, text, (value, where, line) => {
    const v = value as { set?: unknown; features?: unknown; label?: unknown } | null;
    if (
      typeof v !== "object" ||
      v === null ||
      (v.set !== "recent" && v.set !== "original") ||
      typeof v.features !== "object" ||
      v.features === null ||
      !("label" in v)
    ) {
      throw new DataError(`${where}: expected {"set": "recent" | "original", "features": {...}, "label": ...}`);
    }
    return { set: v.set, features: v.features as Record<string, unknown>, label: v.label, line };
  });
}
