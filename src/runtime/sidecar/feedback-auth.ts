// Who may post feedback: with a token configured (spec.monitoring.feedbackAuth), only callers that send it as
// `Authorization: Bearer <token>`. Labels train the next model version, so a stranger's feedback is poisoning.
import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import type { IncomingHttpHeaders } from "node:http";

/** Feedback refused for want of the right bearer token; `problem` says which way, never the token. */
export class FeedbackUnauthorizedError extends Error {
  constructor(readonly problem: "missing" | "invalid") {
    super(
      problem === "missing"
        ? "feedback needs a bearer token: send Authorization: Bearer <token> (the Secret named by spec.monitoring.feedbackAuth)"
        : "the bearer token sent is not the feedback token",
    );
    this.name = "FeedbackUnauthorizedError";
  }
}

/** A configuration mistake in the token file: the sidecar refuses to start (exit code 2). */
export class FeedbackTokenFileError extends Error {
  constructor(file: string, why: string) {
    super(`--feedback-token-file ${file}: ${why}`);
    this.name = "FeedbackTokenFileError";
  }
}

const digest = (s: string | Buffer): Buffer => createHash("sha256").update(s).digest();

export class FeedbackAuth {
  /**
   * Checks compare the token's digest (equal-length buffers for a constant-time comparison); the header is what
   * feedback forwarded to a shadow pod of the same deployment (same Secret) carries.
   */
  private constructor(
    private readonly expected: Buffer,
    readonly authorization: string,
  ) {}

  /** Reads the token (surrounding whitespace, such as a file's trailing newline, is not part of it). */
  static async fromFile(file: string): Promise<FeedbackAuth> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      throw new FeedbackTokenFileError(file, `cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
    const token = text.trim();
    if (token.length === 0) throw new FeedbackTokenFileError(file, "is empty; the Secret's key must hold the token");
    return new FeedbackAuth(digest(token), `Bearer ${token}`);
  }

  /** Throws FeedbackUnauthorizedError unless the request carries the token. */
  check(headers: IncomingHttpHeaders): void {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(headers.authorization ?? "");
    if (!m) throw new FeedbackUnauthorizedError("missing");
    if (!timingSafeEqual(digest(m[1]!), this.expected)) throw new FeedbackUnauthorizedError("invalid");
  }
}
