// The bounded search: a short ordered list of ways to update a model, split across the indexes of a Job.
import { DataError } from "./data.js";

export const TRIAL_NAMES = ["fine-tune", "scratch", "wider", "stronger-l2"] as const;
export type TrialName = (typeof TRIAL_NAMES)[number];

export interface TrialSpec {
  /** Position in the bounded list: the shard that runs it is `index % shards`. */
  index: number;
  name: TrialName;
  hiddenUnits: number[];
  learningRate: number;
  l2: number;
  /** Start from the parent version's weights (and its architecture and L2). */
  fromParent: boolean;
}

export interface TrialBase {
  /** The parent's architecture when fine-tuning or retraining a version; else --hidden / --l2. */
  hiddenUnits: readonly number[];
  learningRate: number;
  l2: number;
  /** Present when there is a version to fine-tune from. */
  parent?: { hiddenUnits: readonly number[]; l2: number };
  maxTrials: number;
}

/**
 * fine-tune (parent's weights, learning rate × 0.1), scratch (same widths, fresh weights), wider (widths × 2),
 * stronger-l2 (L2 × 10), in that order, at most `maxTrials`; fine-tune only when there is a parent.
 */
export function trialPlan(base: TrialBase): TrialSpec[] {
  const hidden = base.parent ? [...base.parent.hiddenUnits] : [...base.hiddenUnits];
  const specs: Omit<TrialSpec, "index">[] = [];
  if (base.parent) specs.push({ name: "fine-tune", hiddenUnits: hidden, learningRate: base.learningRate * 0.1, l2: base.parent.l2, fromParent: true });
  specs.push(
    { name: "scratch", hiddenUnits: hidden, learningRate: base.learningRate, l2: base.l2, fromParent: false },
    { name: "wider", hiddenUnits: hidden.map((w) => w * 2), learningRate: base.learningRate, l2: base.l2, fromParent: false },
    { name: "stronger-l2", hiddenUnits: hidden, learningRate: base.learningRate, l2: base.l2 * 10, fromParent: false },
  );
  return specs.slice(0, base.maxTrials).map((s, index) => ({ ...s, index }));
}

/** The trials shard `index` of `count` runs: every trial i with i % count == index. */
export function shardTrials(trials: readonly TrialSpec[], shard: { index: number; count: number }): TrialSpec[] {
  if (!Number.isInteger(shard.count) || shard.count < 1) throw new DataError(`--trial-shards must be a positive integer, got ${shard.count}`);
  if (!Number.isInteger(shard.index) || shard.index < 0 || shard.index >= shard.count) {
    throw new DataError(`trial shard ${shard.index} is out of range for --trial-shards ${shard.count} (use 0 to ${shard.count - 1})`);
  }
  const mine = trials.filter((t) => t.index % shard.count === shard.index);
  if (mine.length === 0) {
    throw new DataError(
      `trial shard ${shard.index} of ${shard.count} has no trials (${trials.length}: ${trials.map((t) => t.name).join(", ")}); use --trial-shards ${trials.length} or fewer`,
    );
  }
  return mine;
}
