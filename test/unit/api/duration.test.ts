// One duration grammar for the CRD and the CLI: what the API server lets through, the operator and every
// `ballast` flag read the same way.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { buildModelDeploymentCrd, DURATION_PATTERN, DurationError, parseDurationMs } from "../../../src/api/index.js";
import { duration } from "../../../src/cli/runtime-flags.js";

interface JsonSchema {
  pattern?: string;
  properties?: Record<string, JsonSchema>;
}

/** Every string field of the CRD whose description calls it a duration, by dotted path. */
function crdDurationPatterns(): Map<string, string | undefined> {
  const crd = buildModelDeploymentCrd() as { spec: { versions: { schema: { openAPIV3Schema: JsonSchema } }[] } };
  const found = new Map<string, string | undefined>();
  const walk = (node: JsonSchema, path: string): void => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const at = path ? `${path}.${key}` : key;
      if (["duration", "scrapeInterval", "cooldown", "period", "rolloutDeadline"].includes(key)) found.set(at, child.pattern);
      walk(child, at);
    }
  };
  walk(crd.spec.versions[0]!.schema.openAPIV3Schema, "");
  return found;
}

describe("durations", () => {
  it.each([
    ["250ms", 250],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["1h30m", 5_400_000],
    ["2h45m10s500ms", 9_910_500],
    ["5ms", 5],
    ["0s", 0],
    ["0", 0],
  ])("%s is %d ms", (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
    expect(new RegExp(DURATION_PATTERN).test(text)).toBe(true);
  });

  it.each(["", "30", "1.5h", "-1s", "1d", "5 minutes", "1h 30m", "ms", "1e3s", "10000000000s"])("%j is refused, saying how to write one", (text) => {
    expect(() => parseDurationMs(text)).toThrow(DurationError);
    expect(() => parseDurationMs(text)).toThrow(/500ms, 30s, 5m, 1h30m/);
    expect(new RegExp(DURATION_PATTERN).test(text)).toBe(false);
  });

  it("any sequence of whole-number parts adds up", () => {
    const part = fc.record({ n: fc.integer({ min: 0, max: 999_999 }), unit: fc.constantFrom("ms", "s", "m", "h") });
    const scale: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    fc.assert(
      fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), (parts) => {
        const text = parts.map((p) => `${p.n}${p.unit}`).join("");
        expect(parseDurationMs(text)).toBe(parts.reduce((sum, p) => sum + p.n * scale[p.unit]!, 0));
      }),
    );
  });

  it("every duration field of the CRD carries the same pattern the parser uses", () => {
    const fields = crdDurationPatterns();
    expect([...fields.keys()].sort()).toEqual([
      "spec.monitoring.scrapeInterval",
      "spec.monitoring.window.duration",
      "spec.policy.cooldown",
      "spec.policy.maxRetrainings.period",
      "spec.promotion.rolloutDeadline",
    ]);
    for (const [path, pattern] of fields) expect(pattern, path).toBe(DURATION_PATTERN);
  });

  it("a CLI duration flag reads the CRD's forms, compound ones included, and names itself when refusing", () => {
    const flag = duration("--upstream-timeout");
    expect(flag("1h30m")).toBe(5_400_000);
    expect(flag("0")).toBe(0);
    expect(flag(" 30s ")).toBe(30_000);
    expect(() => flag("soon")).toThrow('--upstream-timeout must be a duration like 500ms, 30s, 5m or 1h30m (a number and a unit), got "soon"');
  });
});
