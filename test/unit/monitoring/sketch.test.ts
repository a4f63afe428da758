// Sketch mode: measured error bounds and the merge property.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  DatasetProfile,
  KllSketch,
  NumericProfile,
  compare,
  kllRankErrorBound,
  ksStatistic,
  sortedPoints,
  type WeightedPoints,
} from "../../../src/monitoring/index.js";

/** Park–Miller LCG: reproducible data without a seeded-RNG dependency. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 48271) % 2147483647;
    return s / 2147483647;
  };
}

const generators: Record<string, (r: () => number) => number> = {
  bell: (r) => r() + r() + r() + r(),
  "heavy tail": (r) => 1 / Math.max(r(), 1e-9) ** 0.8,
  discrete: (r) => Math.floor(r() * 12),
};

function sample(kind: string, n: number, seed: number, shift = 0): Float64Array {
  const r = lcg(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = generators[kind]!(r) + shift;
  return out;
}

function sketchOf(values: ArrayLike<number>, k?: number): NumericProfile {
  const p = new NumericProfile({ exactLimit: 0, sketchK: k });
  for (let i = 0; i < values.length; i++) p.addNumber(values[i]!);
  return p;
}

function cdfAt(points: WeightedPoints, x: number): number {
  let lo = 0;
  let hi = points.values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points.values[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? points.cumulative[lo - 1]! / points.total : 0;
}

/** Largest |F̂(x) − F(x)| over every distinct value of the exact sample (where a step CDF error peaks). */
function maxRankError(sketch: WeightedPoints, exact: WeightedPoints): number {
  let worst = 0;
  for (let i = 0; i < exact.values.length; i++) {
    if (i + 1 < exact.values.length && exact.values[i + 1] === exact.values[i]) continue;
    worst = Math.max(worst, Math.abs(cdfAt(sketch, exact.values[i]!) - exact.cumulative[i]! / exact.total));
  }
  return worst;
}

describe("KLL sketch accuracy (measured, default k)", () => {
  it("KS between two 1M-row sketches is within 0.01 of the exact KS", () => {
    const n = 1_000_000;
    const ref = sample("bell", n, 3);
    const cur = sample("bell", n, 103, 0.01);
    const exact = ksStatistic(sortedPoints(ref), sortedPoints(cur));
    const approx = ksStatistic(sketchOf(ref).points(), sketchOf(cur).points());
    expect(Math.abs(approx - exact)).toBeLessThan(0.01);
  });

  it.each(Object.keys(generators).concat("sorted input"))("%s: one sketch's CDF error stays under the documented bound at 300k values", (kind) => {
    const values = kind === "sorted input" ? sample("bell", 300_000, 11).sort() : sample(kind, 300_000, 7);
    const profile = sketchOf(values);
    expect(profile.mode).toBe("sketch");
    expect(maxRankError(profile.points(), sortedPoints(values))).toBeLessThan(kllRankErrorBound(profile.sketchK));
  });

  it("a numeric sketch profile serializes to at most 4 KiB at 1M values", () => {
    const profile = sketchOf(sample("heavy tail", 1_000_000, 5));
    expect(JSON.stringify(profile.toJSON()).length).toBeLessThanOrEqual(4096);
  });
});

describe("merge property (fast-check)", () => {
  // float32-representable values: sketch items are float32, so the exact union is comparable as is.
  const values = fc.array(
    fc.float({ min: -1e6, max: 1e6, noNaN: true, noDefaultInfinity: true }).map((x) => x + 0),
    { maxLength: 3000 },
  );

  it("exact mode: merge(profile(A), profile(B)) equals profile(A ∪ B)", () => {
    fc.assert(
      fc.property(values, values, (a, b) => {
        const pa = new NumericProfile({ exactLimit: Infinity });
        const pb = new NumericProfile({ exactLimit: Infinity });
        const whole = new NumericProfile({ exactLimit: Infinity });
        a.forEach((x) => (pa.addNumber(x), whole.addNumber(x)));
        b.forEach((x) => (pb.addNumber(x), whole.addNumber(x)));
        const merged = pa.merge(pb);
        expect(Array.from(merged.points().values)).toEqual(Array.from(whole.points().values));
        expect(merged.count).toBe(whole.count);
        if (whole.count > 0) expect(merged.std).toBeCloseTo(whole.std, 6);
      }),
      { numRuns: 60 },
    );
  });

  it("sketch mode: the merged CDF is within the bound of the exact union's CDF, counts are exact", () => {
    const k = 64;
    fc.assert(
      fc.property(values, values, fc.array(values, { maxLength: 4 }), (a, b, more) => {
        const parts = [a, b, ...more];
        const sketches = parts.map((p) => {
          const prof = new NumericProfile({ exactLimit: 50, sketchK: k });
          p.forEach((x) => prof.addNumber(x));
          return prof;
        });
        const merged = sketches.reduce((acc, s) => acc.merge(s));
        const all = parts.flat();
        expect(merged.count).toBe(all.length);
        if (all.length === 0) return;
        expect(merged.min).toBe(Math.min(...all));
        expect(merged.max).toBe(Math.max(...all));
        const exact = sortedPoints(all);
        expect(maxRankError(merged.points(), exact)).toBeLessThanOrEqual(kllRankErrorBound(k));
      }),
      { numRuns: 40 },
    );
  });

  it("merging is order-independent in count and weight, and JSON round-trips after merges", () => {
    fc.assert(
      fc.property(values, values, (a, b) => {
        const make = (xs: number[]) => {
          const s = new KllSketch(32);
          xs.forEach((x) => s.update(x));
          return s;
        };
        const ab = make(a);
        ab.merge(make(b));
        const ba = make(b);
        ba.merge(make(a));
        expect(ab.n).toBe(ba.n);
        expect(ab.weightedPoints().total).toBe(a.length + b.length);
        expect(KllSketch.fromJSON(ab.toJSON()).toJSON()).toEqual(ab.toJSON());
      }),
      { numRuns: 60 },
    );
  });
});

describe("compare() in sketch mode", () => {
  it("a sketch that never compacted has no rank error, so its KS p-value equals the exact one", () => {
    const schema = [{ name: "x", type: "numeric" as const }];
    // float32 values: what the sketch stores, so exact and sketch see the same numbers.
    const rows = (seed: number, n: number, shift: number) => Array.from(sample("bell", n, seed, shift), (x) => ({ x: Math.fround(x) }));
    const [ref, cur] = [rows(1, 300, 0), rows(2, 200, 0.3)];
    const [sketched] = compare(DatasetProfile.fromRows(schema, ref, { exactLimit: 0 }), DatasetProfile.fromRows(schema, cur, { exactLimit: 0 }), {
      method: "ks",
    }).features;
    const [exact] = compare(DatasetProfile.fromRows(schema, ref), DatasetProfile.fromRows(schema, cur), { method: "ks", ksMethod: "asymp" }).features;
    expect(sketched!.rankErrorBound).toBe(0);
    expect(sketched!.statistic).toBe(exact!.statistic);
    expect(sketched!.pValue).toBe(exact!.pValue);
  });

  it("flags the same features as exact mode on 200k rows with a clear shift", () => {
    const schema = [
      { name: "stable", type: "numeric" as const },
      { name: "shifted", type: "numeric" as const },
    ];
    const rows = (seed: number, shift: number) => {
      const s = sample("bell", 200_000, seed);
      const t = sample("bell", 200_000, seed + 1, shift);
      return Array.from(s, (x, i) => ({ stable: x, shifted: t[i] }));
    };
    const refRows = rows(21, 0);
    const curRows = rows(41, 0.4);
    for (const method of ["ks", "wasserstein", "psi", "jensenshannon"] as const) {
      const exact = compare(
        DatasetProfile.fromRows(schema, refRows, { exactLimit: Infinity }),
        DatasetProfile.fromRows(schema, curRows, { exactLimit: Infinity }),
        { method },
      );
      const sketched = compare(DatasetProfile.fromRows(schema, refRows, { exactLimit: 0 }), DatasetProfile.fromRows(schema, curRows, { exactLimit: 0 }), {
        method,
      });
      expect(
        sketched.features.map((f) => f.drift),
        method,
      ).toEqual(exact.features.map((f) => f.drift));
      expect(sketched.features.every((f) => f.approximate)).toBe(true);
      expect(Math.abs(sketched.features[1]!.statistic! - exact.features[1]!.statistic!), method).toBeLessThan(0.05);
    }
  });
});
