// The model store: `<root>/<model>/<version>/` directories written atomically and never modified afterwards
// (local and http(s) here; s3:// in s3-store.ts).
import { createHash, randomBytes } from "node:crypto";
import { constants as fsConstants } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { parseStorageUri, type StorageLocation } from "../api/storage-uri.js";
import { VERSION_NAME_REGEX } from "../api/v1alpha1.js";
import { DEFAULT_HTTP_LIMITS, HttpGetError, checkHttpUrl, httpGetBytes, type HttpGetLimits } from "./http-get.js";
import { S3ModelStore, s3SettingsFromEnv, type S3Settings } from "./s3-store.js";

/** Directory under which `pvc://<claim>/...` URIs resolve to `<root>/<claim>/...` unless overridden. */
export const DEFAULT_PVC_MOUNT_ROOT = "/mnt/models";
export const METADATA_FILE = "metadata.json";
/** Rewritten (atomically) after each new version so read-only HTTP stores can list versions. */
export const INDEX_FILE = "index.json";

/** The CRD's version pattern: a version the API server accepts is one the store can serve, and no other. */
const NAME_PATTERN = new RegExp(VERSION_NAME_REGEX);

export class StoreError extends Error {
  constructor(
    message: string,
    readonly code: "bad-uri" | "bad-name" | "not-found" | "exists" | "read-only" | "io" | "insecure" | "integrity" | "denied",
  ) {
    super(message);
    this.name = "StoreError";
  }
}

export interface VersionEntry {
  version: string;
  createdAt: string;
  /** A retraining Job's candidate (metadata `candidate: true`): served only when named, never as the latest. */
  candidate?: true;
  /** SHA-256 (hex) of each file of the version: an HTTP store refuses a file that does not match. */
  files?: Record<string, string>;
}

export interface ModelIndex {
  model: string;
  versions: VersionEntry[];
}

export interface ModelStore {
  /** The URI the store was opened with (for logs and metadata). */
  readonly uri: string;
  readonly readOnly: boolean;
  /** Versions of a model, oldest first (ordered by createdAt, then name). */
  listVersions(model: string): Promise<VersionEntry[]>;
  readFile(model: string, version: string, file: string): Promise<Buffer>;
  /** Writes all files of a new version at once: either every file is there or the version does not exist. */
  writeVersion(model: string, version: string, files: ReadonlyMap<string, Uint8Array | string>): Promise<void>;
}

export interface StoreOptions {
  /** Where `pvc://` claims are mounted; default env BALLAST_PVC_MOUNT_ROOT, else /mnt/models. */
  pvcMountRoot?: string;
  /** Limits of an http(s) store; default DEFAULT_HTTP_LIMITS with the env overrides of `httpLimitsFromEnv`. */
  http?: Partial<HttpGetLimits>;
  /** Endpoint and credentials of an s3:// store; default `s3SettingsFromEnv()`. */
  s3?: S3Settings;
}

const HTTP_MAX_BYTES_ENV = "BALLAST_HTTP_MAX_BYTES";
const ALLOW_INSECURE_HTTP_ENV = "BALLAST_ALLOW_INSECURE_HTTP";

/**
 * The env's say on HTTP fetches: BALLAST_ALLOW_INSECURE_HTTP=true allows plain http beyond loopback,
 * BALLAST_HTTP_MAX_BYTES raises or lowers the per-file cap. Set on the pod (spec env) like the mount root.
 */
export function httpLimitsFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<HttpGetLimits> {
  const limits: Partial<HttpGetLimits> = {};
  const allow = env[ALLOW_INSECURE_HTTP_ENV];
  if (allow !== undefined && allow !== "") {
    if (allow !== "true" && allow !== "false") throw new StoreError(`env ${ALLOW_INSECURE_HTTP_ENV} must be "true" or "false", got "${allow}"`, "bad-uri");
    limits.allowInsecureHttp = allow === "true";
  }
  const max = env[HTTP_MAX_BYTES_ENV];
  if (max !== undefined && max !== "") {
    const n = Number(max);
    if (!Number.isSafeInteger(n) || n < 1) throw new StoreError(`env ${HTTP_MAX_BYTES_ENV} must be a positive number of bytes, got "${max}"`, "bad-uri");
    limits.maxBytes = n;
  }
  return limits;
}

/** Opens `file:///abs`, `pvc://claim/path`, `http(s)://host/path`, `s3://bucket/prefix` or a plain directory path. */
export function openStore(uri: string, options: StoreOptions = {}): ModelStore {
  if (uri.startsWith("http://") || uri.startsWith("https://")) return new HttpModelStore(uri, options.http);
  if (uri.startsWith("s3://")) {
    const location = parseLocation(uri);
    if (location.scheme !== "s3") throw new StoreError(`${uri} is not an s3:// URI`, "bad-uri");
    return new S3ModelStore(uri, location.bucket, location.prefix, options.s3 ?? s3SettingsFromEnv());
  }
  return new FileModelStore(uri, resolveStorePath(uri, options));
}

function parseLocation(uri: string): StorageLocation {
  try {
    return parseStorageUri(uri, "store");
  } catch (err) {
    throw new StoreError((err as Error).message, "bad-uri");
  }
}

/** The local directory of a `file://` or `pvc://` URI (or a plain path); `pvc://c/p` is `<mount root>/c/p`. */
export function resolveStorePath(uri: string, options: StoreOptions = {}): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) return path.resolve(uri);
  const location = parseLocation(uri);
  if (location.scheme === "file") return location.path;
  if (location.scheme === "pvc") {
    const root = options.pvcMountRoot ?? process.env.BALLAST_PVC_MOUNT_ROOT ?? DEFAULT_PVC_MOUNT_ROOT;
    const claimRoot = path.join(root, location.claimName);
    const resolved = path.join(claimRoot, location.path);
    // parseStorageUri refuses ".." already; this holds whatever a future parser lets through.
    if (resolved !== claimRoot && !resolved.startsWith(claimRoot + path.sep))
      throw new StoreError(`${uri} resolves to ${resolved}, outside the claim's mount ${claimRoot}`, "bad-uri");
    return resolved;
  }
  throw new StoreError(`${uri}: ${location.scheme}:// is not a local path`, "bad-uri");
}

export function checkName(kind: "model" | "version", name: string): void {
  if (!NAME_PATTERN.test(name)) {
    throw new StoreError(
      `${kind} name "${name}" is invalid: use 1-63 lowercase letters, digits, '.', '_' or '-', starting and ending alphanumeric`,
      "bad-name",
    );
  }
}

const FILE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function checkFileName(file: string): void {
  if (!FILE_PATTERN.test(file)) throw new StoreError(`file name "${file}" is invalid inside a model version`, "bad-name");
}

/**
 * The newest version that is not a candidate (by createdAt), or the named one (candidate or not) after checking
 * it exists. Skipping candidates keeps unpinned serving pods off a version the operator has not promoted.
 */
export async function resolveVersion(store: ModelStore, model: string, version?: string): Promise<string> {
  const versions = await store.listVersions(model);
  if (version !== undefined) {
    checkName("version", version);
    if (!versions.some((v) => v.version === version)) {
      throw new StoreError(
        `model ${model} has no version ${version} in ${store.uri} (versions: ${versions.map((v) => v.version).join(", ") || "none"})`,
        "not-found",
      );
    }
    return version;
  }
  const latest = versions.filter((v) => !v.candidate).at(-1);
  if (!latest) {
    const candidates = versions.map((v) => v.version).join(", ");
    throw new StoreError(
      `model ${model} has no versions in ${store.uri}${candidates ? ` except candidates (${candidates}): name one with --version to serve it` : ""}`,
      "not-found",
    );
  }
  return latest.version;
}

/** The next free `v<N>` name, one above the highest numbered version (candidates included). */
export async function nextVersionName(store: ModelStore, model: string): Promise<string> {
  let highest = 0;
  for (const { version } of await store.listVersions(model)) {
    const m = /^v(\d+)$/.exec(version);
    if (m) highest = Math.max(highest, Number(m[1]));
  }
  return `v${highest + 1}`;
}

export function sortVersions(entries: VersionEntry[]): VersionEntry[] {
  return entries.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.version.localeCompare(b.version, "en", { numeric: true }));
}

export class FileModelStore implements ModelStore {
  readonly readOnly = false;
  constructor(
    readonly uri: string,
    readonly root: string,
  ) {}

  async listVersions(model: string): Promise<VersionEntry[]> {
    checkName("model", model);
    const dir = path.join(this.root, model);
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch (err) {
      if (isErrno(err, "ENOENT")) return [];
      throw new StoreError(`cannot list ${dir}: ${(err as Error).message}`, "io");
    }
    const entries: VersionEntry[] = [];
    for (const name of names) {
      // Temp dirs start with '.', so a half-written version is never listed.
      if (!NAME_PATTERN.test(name)) continue;
      try {
        const meta = JSON.parse(await fs.readFile(path.join(dir, name, METADATA_FILE), "utf8")) as { createdAt?: unknown; candidate?: unknown };
        entries.push({
          version: name,
          createdAt: typeof meta.createdAt === "string" ? meta.createdAt : "",
          ...(meta.candidate === true ? { candidate: true as const } : {}),
        });
      } catch {
        // A directory without readable metadata is not a version (e.g. someone else's files).
      }
    }
    return sortVersions(entries);
  }

  async readFile(model: string, version: string, file: string): Promise<Buffer> {
    checkName("model", model);
    checkName("version", version);
    checkFileName(file);
    const p = path.join(this.root, model, version, file);
    try {
      return await fs.readFile(p);
    } catch (err) {
      if (isErrno(err, "ENOENT")) throw new StoreError(`${p} does not exist`, "not-found");
      throw new StoreError(`cannot read ${p}: ${(err as Error).message}`, "io");
    }
  }

  async writeVersion(model: string, version: string, files: ReadonlyMap<string, Uint8Array | string>): Promise<void> {
    checkName("model", model);
    checkName("version", version);
    if (!files.has(METADATA_FILE)) throw new StoreError(`a version needs ${METADATA_FILE}`, "bad-name");
    const modelDir = path.join(this.root, model);
    const target = path.join(modelDir, version);
    await fs.mkdir(modelDir, { recursive: true });
    if (await exists(target)) throw new StoreError(`version ${model}/${version} already exists in ${this.uri}; versions are immutable`, "exists");
    const tmp = path.join(modelDir, `.tmp-${version}-${randomBytes(4).toString("hex")}`);
    await fs.mkdir(tmp);
    try {
      for (const [name, content] of files) {
        checkFileName(name);
        await writeFileDurably(path.join(tmp, name), content);
      }
      await fsyncDirectory(tmp);
      try {
        // rename(2) of a directory fails on an existing non-empty target, so two writers never merge.
        await fs.rename(tmp, target);
      } catch (err) {
        if (isErrno(err, "ENOTEMPTY") || isErrno(err, "EEXIST")) {
          throw new StoreError(`version ${model}/${version} already exists in ${this.uri}; versions are immutable`, "exists");
        }
        throw err;
      }
      await fsyncDirectory(modelDir);
    } catch (err) {
      await fs.rm(tmp, { recursive: true, force: true });
      throw err;
    }
    await this.writeIndex(model, version, fileDigests(files));
  }

  /** Rewrites index.json from the versions on disk, keeping the digests earlier writes recorded and adding `version`'s. */
  private async writeIndex(model: string, version: string, digests: Record<string, string>): Promise<void> {
    const modelDir = path.join(this.root, model);
    const known = new Map<string, Record<string, string>>([[version, digests]]);
    try {
      const previous = JSON.parse(await fs.readFile(path.join(modelDir, INDEX_FILE), "utf8")) as Partial<ModelIndex>;
      for (const v of Array.isArray(previous.versions) ? previous.versions : []) if (v?.files && !known.has(v.version)) known.set(v.version, v.files);
    } catch {
      // No index yet (or a damaged one): versions written before keep no digests.
    }
    const versions = (await this.listVersions(model)).map((v) => (known.has(v.version) ? { ...v, files: known.get(v.version)! } : v));
    const index: ModelIndex = { model, versions };
    const tmp = path.join(modelDir, `.tmp-index-${randomBytes(4).toString("hex")}`);
    await writeFileDurably(tmp, JSON.stringify(index, null, 2) + "\n");
    await fs.rename(tmp, path.join(modelDir, INDEX_FILE));
    await fsyncDirectory(modelDir);
  }
}

/**
 * Read-only store over HTTP(S): versions come from `<root>/<model>/index.json`, files from
 * `<root>/<model>/<version>/<file>`, each bounded (size, timeouts, https; see http-get.ts). A file whose version
 * lists SHA-256 digests in index.json must match its digest, or the version is refused.
 */
export class HttpModelStore implements ModelStore {
  readonly readOnly = true;
  private readonly base: string;
  private readonly limits: HttpGetLimits;
  /** Digests per `model/version` as index.json listed them (versions are immutable, so they never change). */
  private readonly digests = new Map<string, Record<string, string> | undefined>();
  constructor(
    readonly uri: string,
    limits: Partial<HttpGetLimits> = {},
  ) {
    this.base = uri.endsWith("/") ? uri : `${uri}/`;
    this.limits = { ...DEFAULT_HTTP_LIMITS, ...httpLimitsFromEnv(), ...limits };
    try {
      checkHttpUrl(new URL(this.base), this.limits.allowInsecureHttp);
    } catch (err) {
      throw new StoreError((err as Error).message, "insecure");
    }
  }

  async listVersions(model: string): Promise<VersionEntry[]> {
    checkName("model", model);
    const where = `${this.base}${model}/${INDEX_FILE}`;
    const body = await this.fetchBytes(`${model}/${INDEX_FILE}`, true);
    if (!body) return [];
    let index: Partial<ModelIndex>;
    try {
      index = JSON.parse(body.toString("utf8")) as Partial<ModelIndex>;
    } catch (err) {
      throw new StoreError(`${where}: invalid JSON: ${(err as Error).message}`, "io");
    }
    if (!Array.isArray(index.versions)) throw new StoreError(`${where}: no "versions" array`, "io");
    const versions = index.versions.filter((v) => typeof v?.version === "string" && NAME_PATTERN.test(v.version));
    for (const v of versions) this.digests.set(`${model}/${v.version}`, checkDigests(where, v.version, v.files));
    return sortVersions(
      versions.map((v) => ({
        version: v.version,
        createdAt: typeof v.createdAt === "string" ? v.createdAt : "",
        ...(v.candidate === true ? { candidate: true as const } : {}),
      })),
    );
  }

  async readFile(model: string, version: string, file: string): Promise<Buffer> {
    checkName("model", model);
    checkName("version", version);
    checkFileName(file);
    if (!this.digests.has(`${model}/${version}`)) await this.listVersions(model);
    const digests = this.digests.get(`${model}/${version}`);
    const want = digests?.[file];
    if (digests && want === undefined) {
      throw new StoreError(
        `${this.base}${model}/${version}/${file}: not among the files index.json lists for version ${version}; refusing to load it`,
        "integrity",
      );
    }
    const bytes = (await this.fetchBytes(`${model}/${version}/${file}`, false))!;
    if (want !== undefined) {
      const got = sha256(bytes);
      if (got !== want) {
        throw new StoreError(
          `${this.base}${model}/${version}/${file}: SHA-256 ${got} does not match ${want} in index.json; refusing version ${version} (a damaged or replaced file: republish the version)`,
          "integrity",
        );
      }
    }
    return bytes;
  }

  writeVersion(model: string, version: string): Promise<void> {
    return Promise.reject(new StoreError(`cannot write ${model}/${version}: ${this.uri} is an HTTP store (read-only)`, "read-only"));
  }

  /** Any file under the store root (e.g. a reference profile next to the models). */
  async fetchFile(rel: string): Promise<Buffer> {
    return (await this.fetchBytes(rel, false))!;
  }

  private async fetchBytes(rel: string, missingOk: boolean): Promise<Buffer | undefined> {
    try {
      return await httpGetBytes(new URL(rel, this.base).toString(), this.limits);
    } catch (err) {
      if (!(err instanceof HttpGetError)) throw new StoreError((err as Error).message, "io");
      if (err.code === "not-found") {
        if (missingOk) return undefined;
        throw new StoreError(err.message, "not-found");
      }
      throw new StoreError(err.message, err.code === "insecure" ? "insecure" : "io");
    }
  }
}

const SHA256_PATTERN = /^[0-9a-f]{64}$/;

/** A version's `files` from index.json: absent, or a map of valid file names to hex SHA-256 digests. */
function checkDigests(where: string, version: string, files: unknown): Record<string, string> | undefined {
  if (files === undefined) return undefined;
  const ok =
    typeof files === "object" &&
    files !== null &&
    !Array.isArray(files) &&
    Object.entries(files).every(([name, digest]) => FILE_PATTERN.test(name) && typeof digest === "string" && SHA256_PATTERN.test(digest));
  if (!ok) throw new StoreError(`${where}: version ${version} "files" must map file names to lowercase hex SHA-256 digests`, "integrity");
  return files as Record<string, string>;
}

function sha256(bytes: Uint8Array | string): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function fileDigests(files: ReadonlyMap<string, Uint8Array | string>): Record<string, string> {
  return Object.fromEntries([...files].map(([name, content]) => [name, sha256(content)]));
}

async function writeFileDurably(file: string, content: Uint8Array | string): Promise<void> {
  const handle = await fs.open(file, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** fsync on a directory makes the entries (new files, renames) in it durable. */
export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, fsConstants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as NodeJS.ErrnoException).code === code;
}
