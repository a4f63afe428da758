// The model store in S3 (or an S3-compatible server): `<prefix>/<model>/<version>/<file>` objects, made a version
// by a manifest object written last. Requests are signed with SigV4 by aws4fetch (docs/storage.md says why).
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import { AwsClient } from "aws4fetch";
import { S3_ENV } from "../api/s3-env.js";
import { parseStorageUri } from "../api/storage-uri.js";
import { xmlElements } from "./aws-xml.js";
import {
  StaticCredentials,
  WebIdentityCredentials,
  roleSessionName,
  stsEndpointFromEnv,
  type AwsCredentials,
  type CredentialProvider,
} from "./s3-credentials.js";
import { checkHttpUrl } from "./http-get.js";
import { POD_NAME_PATTERN, SEGMENT_PREFIX, STORE_LOG_DIR, segmentName } from "./log-segments.js";
import { METADATA_FILE, StoreError, checkFileName, checkName, httpLimitsFromEnv, sortVersions, type ModelStore, type VersionEntry } from "./store.js";

/**
 * Written after every file of a version; a version without it (a writer that crashed or lost the server midway)
 * is not listed and cannot be read. Not a valid file name of a version, so it never collides with one.
 */
export const S3_MANIFEST_OBJECT = "_manifest.json";

const DEFAULT_REGION = "us-east-1";
/**
 * LastModified is the server's clock in whole seconds, the rows' times the sidecar's: S3 refuses SigV4 requests from
 * clocks more than 15 minutes off, so an upload's LastModified is never earlier than that before its rows.
 */
const CLOCK_SKEW_MARGIN_MS = 16 * 60_000;
const REQUEST_TIMEOUT_MS = 60_000;
/** Parallel GETs of manifests when listing: a few at a time keeps a large model directory quick without a burst. */
const LIST_CONCURRENCY = 8;

export interface S3Settings {
  /** Scheme and host, no trailing slash: https://s3.<region>.amazonaws.com or the S3-compatible server's. */
  endpoint: string;
  region: string;
  forcePathStyle: boolean;
  credentials: CredentialProvider;
}

/**
 * Endpoint, region and credentials from the environment, as the AWS CLI and SDKs read them (AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL, AWS_REGION or AWS_DEFAULT_REGION; keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN, else web identity from AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE), plus
 * BALLAST_S3_FORCE_PATH_STYLE. The operator sets them on the pods from spec.model.s3.
 */
export function s3SettingsFromEnv(env: NodeJS.ProcessEnv = process.env): S3Settings {
  const region = env[S3_ENV.region] || env[S3_ENV.defaultRegion] || DEFAULT_REGION;
  const endpoint = (env[S3_ENV.endpoint] || env[S3_ENV.anyEndpoint] || `https://s3.${region}.amazonaws.com`).replace(/\/+$/, "");
  const pathStyle = env[S3_ENV.forcePathStyle] ?? "";
  if (pathStyle !== "" && pathStyle !== "true" && pathStyle !== "false")
    throw new StoreError(`env ${S3_ENV.forcePathStyle} must be "true" or "false", got "${pathStyle}"`, "bad-uri");
  return { endpoint, region, forcePathStyle: pathStyle === "true", credentials: credentialsFromEnv(env, region) };
}

/** The AWS SDKs' order: keys in the environment, else web identity; neither is an error naming both. */
function credentialsFromEnv(env: NodeJS.ProcessEnv, region: string): CredentialProvider {
  const accessKeyId = env[S3_ENV.accessKeyId];
  const secretAccessKey = env[S3_ENV.secretAccessKey];
  if (accessKeyId && secretAccessKey) {
    const sessionToken = env[S3_ENV.sessionToken];
    return new StaticCredentials({ accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) });
  }
  const tokenFile = env[S3_ENV.webIdentityTokenFile];
  const roleArn = env[S3_ENV.roleArn];
  if (tokenFile && roleArn)
    return new WebIdentityCredentials({
      roleArn,
      tokenFile,
      sessionName: roleSessionName(env),
      stsEndpoint: stsEndpointFromEnv(env, region),
      allowInsecureHttp: httpLimitsFromEnv(env).allowInsecureHttp ?? false,
    });
  const half = tokenFile
    ? ` (${S3_ENV.webIdentityTokenFile} is set but ${S3_ENV.roleArn} is not)`
    : roleArn
      ? ` (${S3_ENV.roleArn} is set but ${S3_ENV.webIdentityTokenFile} is not)`
      : "";
  throw new StoreError(
    `no S3 credentials${half}: set ${S3_ENV.accessKeyId} and ${S3_ENV.secretAccessKey}, or ${S3_ENV.roleArn} and ${S3_ENV.webIdentityTokenFile} (on a cluster: spec.model.s3.credentialsSecretRef or spec.model.s3.webIdentity)`,
    "denied",
  );
}

/**
 * The object an s3://<bucket>/<key> URI names (spec.monitoring.reference.uri, a retraining data source), read with
 * the model store's endpoint and credentials.
 */
export async function readS3Object(uri: string, settings?: S3Settings): Promise<Buffer> {
  const location = parseStorageUri(uri, "s3 URI");
  if (location.scheme !== "s3" || location.prefix === "" || uri.endsWith("/"))
    throw new StoreError(`${uri} names no object: an s3:// file is s3://<bucket>/<key>`, "bad-uri");
  return new S3ModelStore(uri, location.bucket, "", settings ?? s3SettingsFromEnv()).readObject(location.prefix);
}

interface Manifest {
  model: string;
  version: string;
  createdAt: string;
  candidate?: true;
  /** SHA-256 (hex) of every file of the version; a file that does not match is refused. */
  files: Record<string, string>;
}

interface S3Response {
  status: number;
  body: Buffer;
  etag?: string;
}

const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export class S3ModelStore implements ModelStore {
  readonly readOnly = false;
  /** A signer for the credentials last handed out: a new one when web identity refreshed them. */
  private signer: { credentials: AwsCredentials; client: AwsClient } | undefined;
  /** Manifests by `model/version`: versions are immutable, so one read is enough for the process's life. */
  private readonly manifests = new Map<string, Manifest>();

  constructor(
    readonly uri: string,
    readonly bucket: string,
    readonly prefix: string,
    readonly settings: S3Settings,
    // The http(s) store's rule: plain http beyond loopback only with BALLAST_ALLOW_INSECURE_HTTP=true.
    allowInsecureHttp = httpLimitsFromEnv().allowInsecureHttp ?? false,
  ) {
    try {
      checkHttpUrl(new URL(settings.endpoint), allowInsecureHttp);
    } catch (err) {
      throw new StoreError(`S3 endpoint ${settings.endpoint}: ${(err as Error).message}`, "insecure");
    }
  }

  async listVersions(model: string): Promise<VersionEntry[]> {
    checkName("model", model);
    const names = (await this.listPrefixes(`${this.modelKey(model)}/`)).filter((name) => {
      try {
        checkName("version", name);
        return true;
      } catch {
        return false; // `_log` and anything else that is not a version directory
      }
    });
    const manifests: Manifest[] = [];
    for (let i = 0; i < names.length; i += LIST_CONCURRENCY) {
      const batch = await Promise.all(names.slice(i, i + LIST_CONCURRENCY).map((version) => this.manifest(model, version)));
      for (const m of batch) if (m) manifests.push(m);
    }
    return sortVersions(manifests.map((m) => ({ version: m.version, createdAt: m.createdAt, ...(m.candidate ? { candidate: true as const } : {}) })));
  }

  async readFile(model: string, version: string, file: string): Promise<Buffer> {
    checkName("model", model);
    checkName("version", version);
    checkFileName(file);
    const manifest = await this.manifest(model, version);
    if (!manifest) throw new StoreError(`${this.where(model, version)} is not a complete version (no ${S3_MANIFEST_OBJECT})`, "not-found");
    const want = manifest.files[file];
    if (want === undefined)
      throw new StoreError(`${this.where(model, version, file)} does not exist (not in the version's ${S3_MANIFEST_OBJECT})`, "not-found");
    const res = await this.request("GET", `${this.modelKey(model)}/${version}/${file}`);
    if (res.status === 404)
      throw new StoreError(`${this.where(model, version, file)} is listed in ${S3_MANIFEST_OBJECT} but missing from the bucket`, "integrity");
    this.check(res, "GET", this.where(model, version, file));
    const got = sha256(res.body);
    if (got !== want)
      throw new StoreError(
        `${this.where(model, version, file)}: SHA-256 ${got} does not match ${want} in ${S3_MANIFEST_OBJECT}; refusing version ${version} (a damaged or replaced object: republish the version)`,
        "integrity",
      );
    return res.body;
  }

  /** Every file under the version's prefix, then the manifest, which no second writer can replace (If-None-Match). */
  async writeVersion(model: string, version: string, files: ReadonlyMap<string, Uint8Array | string>): Promise<void> {
    checkName("model", model);
    checkName("version", version);
    const metadata = files.get(METADATA_FILE);
    if (metadata === undefined) throw new StoreError(`a version needs ${METADATA_FILE}`, "bad-name");
    for (const name of files.keys()) checkFileName(name);
    const exists = (): StoreError => new StoreError(`version ${model}/${version} already exists in ${this.uri}; versions are immutable`, "exists");
    if (await this.manifest(model, version)) throw exists();
    const digests: Record<string, string> = {};
    // A writer that stops here leaves objects without a manifest: never listed, and overwritten by a retry.
    for (const [name, content] of files) {
      const bytes = typeof content === "string" ? Buffer.from(content) : content;
      digests[name] = sha256(bytes);
      this.check(await this.request("PUT", `${this.modelKey(model)}/${version}/${name}`, bytes), "PUT", this.where(model, version, name));
    }
    const meta = parseMetadata(metadata);
    const manifest: Manifest = { model, version, createdAt: meta.createdAt, ...(meta.candidate ? { candidate: true as const } : {}), files: digests };
    const res = await this.request("PUT", this.manifestKey(model, version), Buffer.from(JSON.stringify(manifest, null, 2) + "\n"), {
      "if-none-match": "*",
    });
    if (res.status === 412) throw exists();
    this.check(res, "PUT", this.where(model, version, S3_MANIFEST_OBJECT));
    this.manifests.set(`${model}/${version}`, manifest);
  }

  /** The object at `key` (a reference profile, a training data file): any key, not only a version's files. */
  async readObject(key: string): Promise<Buffer> {
    const where = `s3://${this.bucket}/${key}`;
    const res = await this.request("GET", key);
    if (res.status === 404 && s3ErrorCode(res.body) !== "NoSuchBucket") throw new StoreError(`${where} does not exist`, "not-found");
    this.check(res, "GET", where);
    return res.body;
  }

  /**
   * Uploads a sealed request log segment to `<prefix>/<model>/_log/<pod>/<name>` and resolves only once the server
   * confirmed it: Content-MD5 and the signed SHA-256 make the server refuse a body changed on the way, and the
   * ETag it answers must be the body's MD5 (what a single PUT stores). The same segment PUT twice is one object.
   */
  async putLogSegment(model: string, pod: string, name: string, body: Uint8Array, signal?: AbortSignal): Promise<void> {
    checkName("model", model);
    checkLogObjectNames(pod, name);
    const key = `${this.modelKey(model)}/${STORE_LOG_DIR}/${pod}/${name}`;
    const where = `s3://${this.bucket}/${key}`;
    const md5 = createHash("md5").update(body).digest();
    const res = await this.request("PUT", key, body, { "content-md5": md5.toString("base64") }, undefined, signal);
    this.check(res, "PUT", where);
    const etag = res.etag?.replace(/"/g, "");
    if (etag !== md5.toString("hex"))
      throw new StoreError(
        `PUT ${where}: the server stored ETag ${etag ?? "(none)"}, not the segment's MD5 ${md5.toString("hex")}; not counted as shipped`,
        "integrity",
      );
  }

  /**
   * Downloads the model's shipped request logs into `<toDir>/<pod>/<segment>`, the layout a local `_log/` has, and
   * returns how many segments it wrote. Segments last modified well before `since` (ms) are skipped: every row in
   * one was predicted before it was uploaded.
   */
  async downloadLogs(model: string, toDir: string, since?: number): Promise<{ segments: number; bytes: number }> {
    checkName("model", model);
    const prefix = `${this.modelKey(model)}/${STORE_LOG_DIR}/`;
    let segments = 0;
    let bytes = 0;
    for (const object of await this.listObjects(prefix)) {
      const [pod, name, ...rest] = object.key.slice(prefix.length).split("/");
      if (pod === undefined || name === undefined || rest.length > 0 || !isLogObjectName(pod, name)) continue;
      if (since !== undefined && Date.parse(object.lastModified) < since - CLOCK_SKEW_MARGIN_MS) continue;
      const res = await this.request("GET", object.key);
      this.check(res, "GET", `s3://${this.bucket}/${object.key}`);
      await fs.mkdir(path.join(toDir, pod), { recursive: true });
      await fs.writeFile(path.join(toDir, pod, name), res.body);
      segments++;
      bytes += res.body.length;
    }
    return { segments, bytes };
  }

  private modelKey(model: string): string {
    return this.prefix ? `${this.prefix}/${model}` : model;
  }

  private manifestKey(model: string, version: string): string {
    return `${this.modelKey(model)}/${version}/${S3_MANIFEST_OBJECT}`;
  }

  private where(model: string, version: string, file?: string): string {
    return `s3://${this.bucket}/${this.modelKey(model)}/${version}${file ? `/${file}` : ""}`;
  }

  /** The version's manifest, or undefined while it has none (never written, or the writer has not finished). */
  private async manifest(model: string, version: string): Promise<Manifest | undefined> {
    const cached = this.manifests.get(`${model}/${version}`);
    if (cached) return cached;
    const where = this.where(model, version, S3_MANIFEST_OBJECT);
    const res = await this.request("GET", this.manifestKey(model, version));
    if (res.status === 404 && s3ErrorCode(res.body) !== "NoSuchBucket") return undefined;
    this.check(res, "GET", where);
    let parsed: Partial<Manifest>;
    try {
      parsed = JSON.parse(res.body.toString("utf8")) as Partial<Manifest>;
    } catch (err) {
      throw new StoreError(`${where}: invalid JSON: ${(err as Error).message}`, "integrity");
    }
    const files = parsed.files;
    const filesOk =
      typeof files === "object" &&
      files !== null &&
      Object.entries(files).every(([name, digest]) => isFileName(name) && typeof digest === "string" && SHA256_PATTERN.test(digest));
    if (parsed.version !== version || !filesOk || typeof parsed.createdAt !== "string")
      throw new StoreError(`${where}: not a manifest of version ${version} (needs version, createdAt and files with SHA-256 digests)`, "integrity");
    const manifest: Manifest = { model, version, createdAt: parsed.createdAt, ...(parsed.candidate === true ? { candidate: true as const } : {}), files };
    this.manifests.set(`${model}/${version}`, manifest);
    return manifest;
  }

  /** The "directories" right under `prefix` (ListObjectsV2 with a '/' delimiter, every page). */
  private async listPrefixes(prefix: string): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    do {
      const query = new URLSearchParams({ "list-type": "2", prefix, delimiter: "/", ...(token ? { "continuation-token": token } : {}) });
      const res = await this.request("GET", "", undefined, {}, query);
      this.check(res, "LIST", `s3://${this.bucket}/${prefix}`);
      const xml = res.body.toString("utf8");
      for (const common of xmlElements(xml, "CommonPrefixes")) {
        const p = xmlElements(common, "Prefix")[0];
        if (p?.startsWith(prefix)) names.push(p.slice(prefix.length).replace(/\/$/, ""));
      }
      token = xmlElements(xml, "IsTruncated")[0] === "true" ? xmlElements(xml, "NextContinuationToken")[0] : undefined;
    } while (token);
    return names;
  }

  /** Every object under `prefix` (ListObjectsV2 without a delimiter, every page): key and last-modified time. */
  private async listObjects(prefix: string): Promise<{ key: string; lastModified: string }[]> {
    const objects: { key: string; lastModified: string }[] = [];
    let token: string | undefined;
    do {
      const query = new URLSearchParams({ "list-type": "2", prefix, ...(token ? { "continuation-token": token } : {}) });
      const res = await this.request("GET", "", undefined, {}, query);
      this.check(res, "LIST", `s3://${this.bucket}/${prefix}`);
      const xml = res.body.toString("utf8");
      for (const contents of xmlElements(xml, "Contents")) {
        const key = xmlElements(contents, "Key")[0];
        if (key?.startsWith(prefix)) objects.push({ key, lastModified: xmlElements(contents, "LastModified")[0] ?? "" });
      }
      token = xmlElements(xml, "IsTruncated")[0] === "true" ? xmlElements(xml, "NextContinuationToken")[0] : undefined;
    } while (token);
    return objects;
  }

  private async request(
    method: "GET" | "PUT",
    key: string,
    body?: Uint8Array,
    headers: Record<string, string> = {},
    query?: URLSearchParams,
    signal?: AbortSignal,
  ): Promise<S3Response> {
    const url = this.objectUrl(key, query);
    const client = await this.client();
    try {
      const res = await client.fetch(url, {
        method,
        headers: {
          ...headers,
          // The payload's digest is signed, so a body changed on the way is refused by the server.
          "x-amz-content-sha256": body ? sha256(body) : EMPTY_SHA256,
        },
        ...(body ? { body } : {}),
        signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) : AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const etag = res.headers.get("etag");
      return { status: res.status, body: Buffer.from(await res.arrayBuffer()), ...(etag ? { etag } : {}) };
    } catch (err) {
      if (signal?.aborted) throw new StoreError(`${method} s3://${this.bucket}/${key}: ${(signal.reason as Error).message}`, "io");
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new StoreError(`${method} s3://${this.bucket}/${key}: cannot reach the S3 endpoint ${this.settings.endpoint}: ${why}`, "io");
    }
  }

  private async client(): Promise<AwsClient> {
    const credentials = await this.settings.credentials.get();
    if (this.signer?.credentials !== credentials)
      this.signer = {
        credentials,
        // 5xx and 429 are retried with back-off by aws4fetch; anything else is an answer.
        client: new AwsClient({
          accessKeyId: credentials.accessKeyId,
          secretAccessKey: credentials.secretAccessKey,
          ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}),
          service: "s3",
          region: this.settings.region,
          retries: 3,
          initRetryMs: 200,
        }),
      };
    return this.signer.client;
  }

  private objectUrl(key: string, query?: URLSearchParams): string {
    const path = key.split("/").map(encodeURIComponent).join("/");
    const base = new URL(this.settings.endpoint);
    const url = this.settings.forcePathStyle
      ? new URL(`${base.origin}/${this.bucket}/${path}`)
      : new URL(`${base.protocol}//${this.bucket}.${base.host}/${path}`);
    if (query) url.search = query.toString();
    return url.toString();
  }

  /** A non-2xx answer as a StoreError that says what to fix. */
  private check(res: S3Response, op: string, where: string): void {
    if (res.status >= 200 && res.status < 300) return;
    const code = s3ErrorCode(res.body) ?? `HTTP ${res.status}`;
    const message = xmlElements(res.body.toString("utf8"), "Message")[0];
    const detail = message ? `${code}: ${message}` : code;
    if (res.status === 403 || code === "InvalidAccessKeyId" || code === "SignatureDoesNotMatch")
      throw new StoreError(
        `${op} ${where}: access denied by ${this.settings.endpoint} (${detail}): ${this.settings.credentials.fix} and the bucket policy`,
        "denied",
      );
    if (code === "NoSuchBucket")
      throw new StoreError(
        `${op} ${where}: bucket ${this.bucket} does not exist at ${this.settings.endpoint}: create it, or fix the bucket in the storageUri`,
        "not-found",
      );
    if (res.status === 404) throw new StoreError(`${op} ${where}: not found (${detail})`, "not-found");
    throw new StoreError(`${op} ${where}: ${this.settings.endpoint} answered ${res.status} (${detail})`, "io");
  }
}

const EMPTY_SHA256 = createHash("sha256").digest("hex");

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A pod directory and a sealed segment's name, as the sidecar ships them (nothing else under `_log/` is read). */
function isLogObjectName(pod: string, name: string): boolean {
  // Read at call time: log-segments.js and this module import each other through store.js.
  return POD_NAME_PATTERN.test(pod) && name === segmentName(Number(name.slice(SEGMENT_PREFIX.length, SEGMENT_PREFIX.length + 10)), true);
}

function checkLogObjectNames(pod: string, name: string): void {
  if (!isLogObjectName(pod, name)) throw new StoreError(`"${pod}/${name}" is not a pod name and a sealed segment name`, "bad-name");
}

function isFileName(name: string): boolean {
  try {
    checkFileName(name);
    return true;
  } catch {
    return false;
  }
}

/** createdAt and candidate of the version's metadata.json, which the manifest repeats so listing reads one object. */
function parseMetadata(content: Uint8Array | string): { createdAt: string; candidate: boolean } {
  let meta: { createdAt?: unknown; candidate?: unknown };
  try {
    meta = JSON.parse(typeof content === "string" ? content : Buffer.from(content).toString("utf8")) as typeof meta;
  } catch (err) {
    throw new StoreError(`${METADATA_FILE}: invalid JSON: ${(err as Error).message}`, "bad-name");
  }
  return { createdAt: typeof meta.createdAt === "string" ? meta.createdAt : "", candidate: meta.candidate === true };
}

function s3ErrorCode(body: Buffer): string | undefined {
  return xmlElements(body.toString("utf8"), "Code")[0];
}
