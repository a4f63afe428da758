// The one duration grammar: every duration field of the CRD and every duration flag of the CLI. It is the part of
// Go's time.ParseDuration that CEL's duration() reads, so a CEL rule over a field that passed the pattern never
// fails to parse, and the milliseconds the operator computes are what the API server compared.

/** "0", or <whole number><unit> repeated, unit ms, s, m or h: "250ms", "30s", "1h30m". No bare numbers, fractions or signs. */
export const DURATION_PATTERN = "^(0|([0-9]{1,9}(ms|s|m|h))+)$";

const DURATION = new RegExp(DURATION_PATTERN);
// "ms" before "m", so 5ms is five milliseconds, not five minutes and a stray "s".
const PART = /([0-9]+)(ms|s|m|h)/g;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

export class DurationError extends Error {
  constructor(readonly text: string) {
    super(`"${text}" is not a duration: write whole numbers with a unit (ms, s, m, h), e.g. 500ms, 30s, 5m, 1h30m, or 0`);
    this.name = "DurationError";
  }
}

/** Milliseconds of a duration in DURATION_PATTERN; throws DurationError for anything else. */
export function parseDurationMs(text: string): number {
  if (!DURATION.test(text)) throw new DurationError(text);
  let total = 0;
  for (const [, amount, unit] of text.matchAll(PART)) total += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  return total;
}
