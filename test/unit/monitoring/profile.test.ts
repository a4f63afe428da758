import { describe, expect, it } from "vitest";
import { DatasetProfile, ProfileFormatError, compare, inferFeatureSchema, type FeatureSchema } from "../../../src/monitoring/index.js";

const schema: FeatureSchema[] = [
  { name: "age", type: "numeric" },
  { name: "city", type: "categorical" },
];

function rows(n: number, offset = 0): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({ age: 20 + ((i * 7 + offset) % 50), city: ["paris", "oslo", "rome"][i % 3] }));
}

describe("DatasetProfile", () => {
  it("counts missing, non-finite and invalid cells apart from the distribution", () => {
    const profile = DatasetProfile.fromRows(schema, [
      { age: 30, city: "oslo" },
      { age: null, city: "" },
      { age: Number.NaN, city: { nested: true } },
      { age: "Infinity", city: 7 },
      { age: "abc" },
      { age: "41.5", city: true },
    ]);
    const age = profile.feature("age")!;
    expect(age.type).toBe("numeric");
    if (age.type !== "numeric") return;
    expect({ count: age.count, missing: age.missing, nonFinite: age.nonFinite, invalid: age.invalid }).toEqual({
      count: 2,
      missing: 1,
      nonFinite: 2,
      invalid: 1,
    });
    expect(age.mean).toBeCloseTo(35.75, 12);
    const city = profile.feature("city")!;
    if (city.type !== "categorical") throw new Error("city should be categorical");
    expect(Object.fromEntries(city.counts)).toEqual({ oslo: 1, "7": 1, true: 1 });
    expect({ missing: city.missing, invalid: city.invalid }).toEqual({ missing: 2, invalid: 1 });
    expect(profile.rows).toBe(6);
  });

  it("round-trips through JSON exactly, in exact and in sketch mode", () => {
    for (const exactLimit of [Infinity, 0, 100]) {
      const profile = DatasetProfile.fromRows(schema, rows(5000), { exactLimit });
      const text = JSON.stringify(profile.toJSON());
      const back = DatasetProfile.fromJSON(JSON.parse(text));
      expect(JSON.stringify(back.toJSON())).toBe(text);
      expect(compare(profile, back).driftShare).toBe(0);
    }
  });

  it("merges like profiling the union of the rows", () => {
    const a = DatasetProfile.fromRows(schema, rows(300));
    const b = DatasetProfile.fromRows(schema, rows(200, 3));
    const whole = DatasetProfile.fromRows(schema, [...rows(300), ...rows(200, 3)]);
    const merged = a.merge(b);
    const ma = merged.feature("age")!;
    const wa = whole.feature("age")!;
    if (ma.type !== "numeric" || wa.type !== "numeric") throw new Error("numeric expected");
    expect(ma.count).toBe(wa.count);
    expect(ma.mean).toBeCloseTo(wa.mean, 10);
    expect(ma.std).toBeCloseTo(wa.std, 10);
    expect([...ma.exactValues()!].sort()).toEqual([...wa.exactValues()!].sort());
    expect(merged.toJSON().features.city).toEqual(whole.toJSON().features.city);
  });

  it("rejects a malformed profile with a message naming the field", () => {
    const good = DatasetProfile.fromRows(schema, rows(10)).toJSON();
    const bad = JSON.parse(JSON.stringify(good));
    bad.features.age.count = -1;
    expect(() => DatasetProfile.fromJSON(bad)).toThrow(ProfileFormatError);
    expect(() => DatasetProfile.fromJSON(bad)).toThrow(/features\.age\.count/);
    const mismatch = JSON.parse(JSON.stringify(good));
    mismatch.features.age.count = 11;
    expect(() => DatasetProfile.fromJSON(mismatch)).toThrow(/features\.age.*10 values but count is 11/);
    expect(() => DatasetProfile.fromJSON("nope")).toThrow(/profile \(root\)/);
  });

  it("infers numeric columns from numbers and numeric strings, everything else categorical", () => {
    const inferred = inferFeatureSchema(
      [
        { a: "1.5", b: "x", c: "" },
        { a: 2, b: "3", c: null },
      ],
      ["a", "b", "c"],
    );
    expect(inferred).toEqual([
      { name: "a", type: "numeric" },
      { name: "b", type: "categorical" },
      { name: "c", type: "numeric" },
    ]);
  });
});

describe("DatasetProfile.fromColumns", () => {
  it("profiles column arrays exactly like the same rows", () => {
    const data = rows(700);
    const byColumns = DatasetProfile.fromColumns(schema, {
      age: Float64Array.from(data, (r) => r.age as number),
      city: data.map((r) => r.city),
    });
    expect(byColumns.toJSON()).toEqual(DatasetProfile.fromRows(schema, data).toJSON());
    expect(() => DatasetProfile.fromColumns(schema, { age: [1, 2], city: ["a"] })).toThrow(/different lengths: 2, 1/);
  });
});
