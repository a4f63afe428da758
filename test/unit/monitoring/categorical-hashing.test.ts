// Categorical profiles beyond maxCategories: values first seen after the named ones are counted in fixed hash
// buckets, so any two profiles compare over one partition (no named value against a catch-all), merge exactly,
// and stay close to the exact distance on real high-cardinality columns (January flights' airports).
import { describe, expect, it } from "vitest";
import {
  CategoricalProfile,
  DatasetProfile,
  HASH_BUCKETS,
  ProfileFormatError,
  alignCategoricalCounts,
  categoryBucket,
  featureStatistic,
  jensenShannonDistance,
  populationStabilityIndex,
} from "../../../src/monitoring/index.js";
import { januaryFlights, seeded, shuffled, type Row } from "./real-data.js";

function exactAligned(a: Row[], b: Row[], column: string): [number[], number[]] {
  const count = (rows: Row[]) => {
    const m = new Map<string, number>();
    for (const r of rows) m.set(String(r[column]), (m.get(String(r[column])) ?? 0) + 1);
    return m;
  };
  const [ca, cb] = [count(a), count(b)];
  const keys = [...new Set([...ca.keys(), ...cb.keys()])];
  return [keys.map((k) => ca.get(k) ?? 0), keys.map((k) => cb.get(k) ?? 0)];
}

function profileOf(rows: Row[], column: string): CategoricalProfile {
  return DatasetProfile.fromRows([{ name: column, type: "categorical" }], rows).features.get(column) as CategoricalProfile;
}

describe("hashed categories on January flights (171 origin, 179 destination airports, 100 named)", () => {
  it.each(["origin", "destination"])("%s: Jensen–Shannon and PSI of random halves within 0.01 of the exact values", (column) => {
    const random = seeded(3);
    for (let s = 0; s < 10; s++) {
      const rows = shuffled(januaryFlights, random);
      const [a, b] = [rows.slice(0, rows.length / 2), rows.slice(rows.length / 2)];
      const [pa, pb] = [profileOf(a, column), profileOf(b, column)];
      expect(pa.hashed.size).toBeGreaterThan(0);
      const exact = exactAligned(a, b, column);
      // Hashing only merges values (never splits one), so it can only lower a divergence.
      const js = featureStatistic("jensenshannon", pa, pb)!;
      expect(js).toBeLessThanOrEqual(jensenShannonDistance(...exact, 2) + 1e-12);
      expect(Math.abs(js - jensenShannonDistance(...exact, 2))).toBeLessThan(0.01);
      expect(Math.abs(featureStatistic("psi", pa, pb)! - populationStabilityIndex(...exact))).toBeLessThan(0.01);
    }
  });

  it("a profile compared with itself, in another arrival order, is at distance 0 (same partition, whatever was named)", () => {
    const forward = profileOf(januaryFlights, "origin");
    const backward = profileOf([...januaryFlights].reverse(), "origin");
    expect([...forward.counts.keys()]).not.toEqual([...backward.counts.keys()]);
    expect(featureStatistic("jensenshannon", forward, backward)).toBe(0);
  });

  it("merging replicas equals profiling all their rows, cell for cell", () => {
    const random = seeded(4);
    const rows = shuffled(januaryFlights, random);
    const parts = [rows.slice(0, 500), rows.slice(500, 1700), rows.slice(1700)];
    const merged = parts.map((p) => profileOf(p, "destination")).reduce((a, b) => a.merge(b));
    const whole = profileOf(rows, "destination");
    expect(merged.count).toBe(whole.count);
    const aligned = alignCategoricalCounts(whole, merged);
    expect(aligned.reference).toEqual(aligned.current);
    expect(merged.counts.size).toBeLessThanOrEqual(100);
  });

  it("a value one replica names and another holds in a bucket is hashed in the merge, so no count is split", () => {
    const a = new CategoricalProfile({ maxCategories: 2 });
    for (const v of ["x", "y"]) a.addCategory(v);
    const b = new CategoricalProfile({ maxCategories: 2 });
    for (const v of ["p", "q", "x", "x"]) b.addCategory(v);
    expect(b.exactCount("x")).toBeUndefined();
    const merged = a.merge(b);
    expect(merged.counts.has("x")).toBe(false);
    expect(merged.hashed.get(categoryBucket("x"))).toBeGreaterThanOrEqual(3);
    // Compared with a profile that names x, the partition puts x in its bucket on both sides: distance 0.
    const whole = new CategoricalProfile({ maxCategories: 4 });
    for (const v of ["x", "y", "p", "q", "x", "x"]) whole.addCategory(v);
    expect(featureStatistic("jensenshannon", whole, merged)).toBe(0);
  });

  it("stays bounded: at most maxCategories names plus HASH_BUCKETS buckets, whatever the cardinality", () => {
    const profile = new CategoricalProfile({ maxCategories: 10 });
    for (let i = 0; i < 50_000; i++) profile.addCategory(`user-${i}`);
    expect(profile.counts.size).toBe(10);
    expect(profile.hashed.size).toBeLessThanOrEqual(HASH_BUCKETS);
    expect(profile.count).toBe(50_000);
    const back = CategoricalProfile.fromJSON(JSON.parse(JSON.stringify(profile.toJSON())), "profile features.user");
    expect(alignCategoricalCounts(profile, back).reference).toEqual(alignCategoricalCounts(profile, back).current);
  });

  it("keeps exact named counts (no hashing) up to maxCategories, as before", () => {
    const profile = new CategoricalProfile();
    for (const v of ["rain", "sun", "rain", "fog"]) profile.add(v);
    expect(profile.toJSON()).toEqual({ type: "categorical", count: 4, missing: 0, invalid: 0, maxCategories: 100, counts: { rain: 2, sun: 1, fog: 1 } });
  });

  it("buckets are stable across processes: FNV-1a of the value", () => {
    expect(categoryBucket("SEA")).toBe(categoryBucket("SEA"));
    expect(categoryBucket("")).toBe(0x811c9dc5 % HASH_BUCKETS);
  });

  it.each([
    [
      { type: "categorical", count: 5, missing: 0, invalid: 0, maxCategories: 100, counts: { a: 2 }, other: 3 },
      /features\.city\.other: 3 values in an uncomparable catch-all/,
    ],
    [
      { type: "categorical", count: 2, missing: 0, invalid: 0, maxCategories: 100, counts: {}, hashed: { "9999": 2 } },
      /features\.city\.hashed: bucket "9999" is not an integer in \[0, 1024\)/,
    ],
    [
      { type: "categorical", count: 9, missing: 0, invalid: 0, maxCategories: 100, counts: { a: 2 }, hashed: { "3": 2 } },
      /counts and hashed add up to 4 but count is 9/,
    ],
  ])("rejects a profile it cannot compare, naming the field: %j", (feature, message) => {
    const json = { version: 1, rows: feature.count, schema: [{ name: "city", type: "categorical" }], features: { city: feature } };
    expect(() => DatasetProfile.fromJSON(json)).toThrow(ProfileFormatError);
    expect(() => DatasetProfile.fromJSON(json)).toThrow(message);
  });
});
