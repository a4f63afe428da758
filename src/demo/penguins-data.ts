// The closed loop's real data: vega-datasets' penguins.json (Palmer Station, 333 birds with a recorded sex).
// A sex classifier trained on Adelie measurements meets Gentoo traffic: Gentoo are about 1.4 kg heavier with
// shallower beaks, so what tells an Adelie male from a female misleads on Gentoo — accuracy falls to about a
// half (measured 0.53). Labelled Gentoo feedback is what retraining needs to recover (measured 0.92 on held-out
// Gentoo birds). Real degradation, real recovery. Chinstrap birds are not used.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { permutation, seededRandom } from "../training/split.js";

export const PENGUIN_FEATURES = ["beak_length", "beak_depth", "flipper_length", "body_mass"] as const;
export const PENGUIN_LABEL = "sex";

/** One bird as served: the four measurements and the label, plus its species (never a model input). */
export type Penguin = Record<(typeof PENGUIN_FEATURES)[number] | typeof PENGUIN_LABEL | "species", string>;

export interface PenguinSplit {
  /** Adelie birds the first version trains on. */
  training: Penguin[];
  /** Adelie birds never trained on: traffic the model knows. */
  familiar: Penguin[];
  /** Gentoo birds, shuffled: the traffic that degrades the model. */
  gentoo: Penguin[];
}

function penguinsJsonPath(): string {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve("vega-datasets");
  } catch {
    throw new Error("the demo's data comes from the npm package vega-datasets, which is not installed: run `npm ci` in the Ballast checkout");
  }
  const file = join(dirname(entry), "..", "data", "penguins.json");
  if (!existsSync(file)) throw new Error(`${file} is missing from the installed vega-datasets package (reinstall it with \`npm ci\`)`);
  return file;
}

/** Birds with a recorded sex and all four measurements, in the file's order. */
export function loadPenguins(file = penguinsJsonPath()): Penguin[] {
  const raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>[];
  const columns: Record<(typeof PENGUIN_FEATURES)[number], string> = {
    beak_length: "Beak Length (mm)",
    beak_depth: "Beak Depth (mm)",
    flipper_length: "Flipper Length (mm)",
    body_mass: "Body Mass (g)",
  };
  const out: Penguin[] = [];
  for (const r of raw) {
    const sex = r["Sex"];
    if (sex !== "MALE" && sex !== "FEMALE") continue;
    const values = PENGUIN_FEATURES.map((f) => r[columns[f]]);
    if (values.some((v) => typeof v !== "number" || !Number.isFinite(v))) continue;
    const bird = { species: String(r["Species"]), sex: sex.toLowerCase() } as Penguin;
    PENGUIN_FEATURES.forEach((f, i) => (bird[f] = String(values[i])));
    out.push(bird);
  }
  return out;
}

/** A deterministic split (fixed seeds): every run shows the same numbers. */
export function splitPenguins(birds: readonly Penguin[], familiarRows: number): PenguinSplit {
  const known = birds.filter((b) => b.species === "Adelie");
  const gentoo = birds.filter((b) => b.species === "Gentoo");
  if (known.length < familiarRows * 2) throw new Error(`${known.length} Adelie birds are too few to hold back ${familiarRows}`);
  const order = permutation(known.length, seededRandom(11));
  const held = new Set(Array.from(order.subarray(0, familiarRows)));
  return {
    training: known.filter((_, i) => !held.has(i)),
    familiar: Array.from(order.subarray(0, familiarRows), (i) => known[i]!),
    gentoo: Array.from(permutation(gentoo.length, seededRandom(12)), (i) => gentoo[i]!),
  };
}

/** Numbers and single words: no quoting needed. */
export function penguinsCsv(birds: readonly Penguin[]): string {
  const columns = ["species", ...PENGUIN_FEATURES, PENGUIN_LABEL] as const;
  return [columns.join(","), ...birds.map((b) => columns.map((c) => b[c]).join(","))].join("\n") + "\n";
}
