// Where the s3:// store's requests get their credentials, in the AWS SDKs' order: keys from the environment, else
// web identity — the pod's OIDC token (a projected ServiceAccount token: IRSA on EKS, spec.model.s3.webIdentity
// elsewhere) exchanged with STS AssumeRoleWithWebIdentity for temporary keys, refreshed before they expire.
import fs from "node:fs/promises";
import os from "node:os";
import { S3_ENV } from "../api/s3-env.js";
import { xmlElements } from "./aws-xml.js";
import { checkHttpUrl } from "./http-get.js";
import { StoreError } from "./store.js";

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Epoch ms after which they are refused; absent for long-lived keys. */
  expiresAt?: number;
}

export interface CredentialProvider {
  /** Credentials valid for a request sent now. */
  get(): Promise<AwsCredentials>;
  /** What to check when the server refuses them, for error messages (never a secret). */
  readonly fix: string;
}

/** Keys that do not change for the process's life (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN). */
export class StaticCredentials implements CredentialProvider {
  readonly fix = `check the credentials (spec.model.s3.credentialsSecretRef, or ${S3_ENV.accessKeyId}/${S3_ENV.secretAccessKey})`;
  constructor(private readonly credentials: AwsCredentials) {}

  get(): Promise<AwsCredentials> {
    return Promise.resolve(this.credentials);
  }
}

export interface WebIdentitySettings {
  roleArn: string;
  tokenFile: string;
  sessionName: string;
  /** Scheme and host of STS. */
  stsEndpoint: string;
  /** Plain http to STS beyond loopback (BALLAST_ALLOW_INSECURE_HTTP=true): the answer holds the session's keys. */
  allowInsecureHttp: boolean;
}

/** Refresh this long before expiry (the AWS SDKs' margin), or at half the lifetime of shorter sessions. */
const REFRESH_MARGIN_MS = 5 * 60_000;
const STS_TIMEOUT_MS = 30_000;
/** After a failed refresh, still-valid credentials are used and STS is asked again no sooner than this. */
const RETRY_AFTER_FAILURE_MS = 10_000;
const STS_VERSION = "2011-06-15";

/**
 * Temporary credentials from STS AssumeRoleWithWebIdentity. The token file is read at every exchange, since the
 * kubelet rotates the projected token; one exchange at a time, whoever asks meanwhile waits for it.
 */
export class WebIdentityCredentials implements CredentialProvider {
  readonly fix: string;
  private current: AwsCredentials | undefined;
  private refreshAt = 0;
  private inflight: Promise<AwsCredentials> | undefined;

  constructor(
    private readonly settings: WebIdentitySettings,
    private readonly now: () => number = Date.now,
  ) {
    this.fix = `check the role ${settings.roleArn}: its trust policy must accept this pod's token (issuer, audience, subject) and its permissions must allow the bucket (spec.model.s3.webIdentity, or ${S3_ENV.roleArn}/${S3_ENV.webIdentityTokenFile})`;
    try {
      checkHttpUrl(new URL(settings.stsEndpoint), settings.allowInsecureHttp);
    } catch (err) {
      throw new StoreError(`STS endpoint ${settings.stsEndpoint}: ${(err as Error).message}`, "insecure");
    }
  }

  async get(): Promise<AwsCredentials> {
    const now = this.now();
    if (this.current && now < this.refreshAt) return this.current;
    this.inflight ??= this.exchange().finally(() => (this.inflight = undefined));
    try {
      return await this.inflight;
    } catch (err) {
      // STS down for a moment should not fail requests the session still covers.
      if (this.current?.expiresAt !== undefined && this.now() < this.current.expiresAt) {
        this.refreshAt = this.now() + RETRY_AFTER_FAILURE_MS;
        return this.current;
      }
      throw err;
    }
  }

  private async exchange(): Promise<AwsCredentials> {
    const { roleArn, tokenFile, sessionName, stsEndpoint } = this.settings;
    let token: string;
    try {
      token = (await fs.readFile(tokenFile, "utf8")).trim();
    } catch (err) {
      throw new StoreError(`cannot read the web identity token ${tokenFile} (${S3_ENV.webIdentityTokenFile}): ${(err as Error).message}`, "denied");
    }
    if (!token) throw new StoreError(`the web identity token ${tokenFile} (${S3_ENV.webIdentityTokenFile}) is empty`, "denied");
    const where = `STS AssumeRoleWithWebIdentity for ${roleArn} at ${stsEndpoint}`;
    const body = new URLSearchParams({
      Action: "AssumeRoleWithWebIdentity",
      Version: STS_VERSION,
      RoleArn: roleArn,
      RoleSessionName: sessionName,
      WebIdentityToken: token,
    });
    let status: number;
    let text: string;
    try {
      // Unsigned: the token is the proof. Sent in the body, never in a URL a proxy might log.
      const res = await fetch(`${stsEndpoint}/`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8", accept: "application/xml" },
        body,
        signal: AbortSignal.timeout(STS_TIMEOUT_MS),
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new StoreError(`${where}: cannot reach STS: ${cause?.code ?? cause?.message ?? (err as Error).message}`, "io");
    }
    if (status !== 200) {
      const code = xmlElements(text, "Code")[0] ?? `HTTP ${status}`;
      const message = xmlElements(text, "Message")[0];
      const detail = `${code}${message ? `: ${message.slice(0, 300)}` : ""}`;
      // 4xx: the token or the role is wrong, retrying the same will not help; 5xx and throttling may pass.
      const transient = status >= 500 || code === "Throttling" || code === "IDPCommunicationError";
      throw new StoreError(`${where} refused (${detail}): ${transient ? "STS is unavailable, retried later" : this.fix}`, transient ? "io" : "denied");
    }
    const accessKeyId = xmlElements(text, "AccessKeyId")[0];
    const secretAccessKey = xmlElements(text, "SecretAccessKey")[0];
    const sessionToken = xmlElements(text, "SessionToken")[0];
    const expiresAt = Date.parse(xmlElements(text, "Expiration")[0] ?? "");
    if (!accessKeyId || !secretAccessKey || !sessionToken || !Number.isFinite(expiresAt))
      throw new StoreError(`${where}: the answer holds no credentials (AccessKeyId, SecretAccessKey, SessionToken, Expiration)`, "io");
    const now = this.now();
    this.current = { accessKeyId, secretAccessKey, sessionToken, expiresAt };
    this.refreshAt = expiresAt - Math.min(REFRESH_MARGIN_MS, (expiresAt - now) / 2);
    return this.current;
  }
}

/** STS's endpoint as the AWS CLI finds it: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else regional (or global if "legacy"). */
export function stsEndpointFromEnv(env: NodeJS.ProcessEnv, region: string): string {
  const explicit = env[S3_ENV.stsEndpoint] || env[S3_ENV.anyEndpoint];
  if (explicit) return explicit.replace(/\/+$/, "");
  return env[S3_ENV.stsRegionalEndpoints] === "legacy" ? "https://sts.amazonaws.com" : `https://sts.${region}.amazonaws.com`;
}

/** A RoleSessionName STS accepts (2-64 of [\w+=,.@-]), naming the pod, so CloudTrail says who read the bucket. */
export function roleSessionName(env: NodeJS.ProcessEnv): string {
  const given = env[S3_ENV.roleSessionName];
  if (given) return given;
  const name = `ballast-${env.POD_NAME || os.hostname()}`.replace(/[^\w+=,.@-]/g, "-").slice(0, 64);
  return name.length >= 2 ? name : "ballast";
}
