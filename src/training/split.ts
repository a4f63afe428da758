// Seeded shuffling and train / validation / holdout splits, so `--seed` reproduces a run exactly.

export { seededRandom } from "../monitoring/seeded-random.js";

/** Fisher–Yates permutation of 0..n-1. */
export function permutation(n: number, random: () => number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

export interface Split {
  train: number[];
  validation: number[];
  holdout: number[];
}

/** Holdout first (evaluation only), then a validation slice of the rest for early stopping. */
export function splitIndices(n: number, holdoutFraction: number, validationFraction: number, random: () => number): Split {
  const order = Array.from(permutation(n, random));
  const holdoutSize = Math.round(n * holdoutFraction);
  const rest = order.slice(holdoutSize);
  const validationSize = Math.max(1, Math.round(rest.length * validationFraction));
  return {
    holdout: order.slice(0, holdoutSize),
    validation: rest.slice(0, validationSize),
    train: rest.slice(validationSize),
  };
}
