// The body of `PUT /v1/mirror` (monitoring port, the operator only): which candidate version to mirror to, its
// pods' serving ports, the share of requests, and until when. Checked field by field; a bad one is a 400 naming it.
import { Type, type Static } from "@sinclair/typebox";
import { Refusal } from "../refusal.js";
import { wireChecker } from "../wire/checker.js";

export const MAX_MIRROR_TARGETS = 16;
/**
 * The furthest ahead `expiresAt` may lie. The operator renews every loop step (now + 2 min); a far expiry would let
 * a dead operator leave mirroring on, which is what the expiry is for.
 */
export const MAX_MIRROR_LEASE_MS = 60 * 60 * 1000;

const MirrorBodySchema = Type.Object(
  {
    version: Type.String({
      pattern: "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$",
      errorMessage: "must be the candidate's store version (letters, digits, '.', '_', '-'; at most 63 characters)",
    }),
    targets: Type.Array(Type.String({ maxLength: 256, errorMessage: "must be a base URL http://<ip>:<port>" }), {
      minItems: 1,
      maxItems: MAX_MIRROR_TARGETS,
      errorMessage: `must be an array of 1 to ${MAX_MIRROR_TARGETS} base URLs http://<ip>:<port> (the shadow pods' serving ports)`,
    }),
    sampleRate: Type.Number({ exclusiveMinimum: 0, maximum: 1, errorMessage: "must be a number greater than 0 and at most 1" }),
    expiresAt: Type.String({ maxLength: 40, errorMessage: "must be an RFC 3339 time (when mirroring stops unless renewed)" }),
  },
  { additionalProperties: false, errorMessage: 'must be an object {"version", "targets", "sampleRate", "expiresAt"}' },
);

export interface MirrorConfig {
  version: string;
  /** Origins `http://host:port`, in the order given. */
  targets: string[];
  sampleRate: number;
  /** ms since the epoch. */
  expiresAt: number;
}

const bodyProblem = wireChecker(MirrorBodySchema);
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function invalid(message: string): never {
  throw new Refusal("invalid", message);
}

/** A target as an origin; only plain `http://host:port` with nothing after it (the request path is appended). */
function targetOrigin(value: string, where: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    invalid(`${where}: ${JSON.stringify(value)} is not a URL; give http://<ip>:<port>`);
  }
  if (url.protocol !== "http:") invalid(`${where}: must use http:// (the shadow pod's serving port), not ${url.protocol}`);
  if (url.username || url.password || url.search || url.hash || (url.pathname !== "/" && url.pathname !== ""))
    invalid(`${where}: must be a base URL http://<ip>:<port> with no path, query or credentials`);
  return url.origin;
}

/** The mirror a PUT body asks for; throws Refusal("invalid") naming the first field that does not fit. */
export function parseMirrorConfig(body: unknown, now: number): MirrorConfig {
  const problem = bodyProblem(body);
  if (problem) invalid(problem);
  const { version, targets, sampleRate, expiresAt } = body as Static<typeof MirrorBodySchema>;
  const origins = targets.map((t, i) => targetOrigin(t, `targets[${i}]`));
  const expires = RFC3339.test(expiresAt) ? Date.parse(expiresAt) : NaN;
  if (!Number.isFinite(expires)) invalid(`"expiresAt" must be an RFC 3339 time such as 2026-12-05T12:00:00Z, not ${JSON.stringify(expiresAt)}`);
  if (expires <= now) invalid(`"expiresAt" ${expiresAt} is in the past; mirroring would stop at once`);
  if (expires > now + MAX_MIRROR_LEASE_MS)
    invalid(`"expiresAt" ${expiresAt} is more than ${MAX_MIRROR_LEASE_MS / 60_000} minutes ahead; renew the mirror instead`);
  return { version, targets: origins, sampleRate, expiresAt: expires };
}
