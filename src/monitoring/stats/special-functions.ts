// @stdlib's incomplete gamma and log beta functions, loaded on first use. The operator imports the monitoring code
// (summaries, policy) at start but computes a p-value only once a sidecar reports a closed window; the two packages
// are ~290 CommonJS modules, which at start cost the operator ~100 ms of CPU and several MiB of RSS for nothing.
import { createRequire } from "node:module";

type Gammainc = typeof import("@stdlib/math-base-special-gammainc");
type Betaln = typeof import("@stdlib/math-base-special-betaln");

const require = createRequire(import.meta.url);
let gammaincImpl: Gammainc | undefined;
let betalnImpl: Betaln | undefined;

/** The regularized incomplete gamma function (@stdlib/math-base-special-gammainc). */
export function gammainc(x: number, s: number, regularized?: boolean, upper?: boolean): number {
  gammaincImpl ??= require("@stdlib/math-base-special-gammainc") as Gammainc;
  return gammaincImpl(x, s, regularized, upper);
}

/** The natural logarithm of the beta function (@stdlib/math-base-special-betaln). */
export function betaln(a: number, b: number): number {
  betalnImpl ??= require("@stdlib/math-base-special-betaln") as Betaln;
  return betalnImpl(a, b);
}
