// Ballast's image on the local nodes without a registry or a runtime: a pod's image reference resolved
// against OCI layouts on this machine (`make image` writes dist/image/oci), and the platform image's layers
// unpacked once per manifest digest into the tool cache, as the read-only lower layer of each container.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync } from "node:fs";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
/** Unpacked images no container started from for this long are deleted when another is unpacked (~300 MB each). */
const UNUSED_MS = 7 * 24 * 3600_000;

/** The parts of an OCI image config a container runtime uses. */
export interface ImageConfig {
  architecture: string;
  os: string;
  config: { User?: string; Entrypoint?: string[]; Cmd?: string[]; Env?: string[]; WorkingDir?: string; Labels?: Record<string, string> };
}

interface Descriptor {
  mediaType: string;
  digest: string;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}

interface Index {
  manifests: Descriptor[];
}

/** One platform's image of a layout, as a reference resolved to it. */
export interface LayoutImage {
  layout: string;
  /** The digest the reference resolved through: the index's, or the manifest's when named directly. */
  resolvedDigest: string;
  manifestDigest: string;
  config: ImageConfig;
  /** Gzipped layer tarballs, lowest first. */
  layers: string[];
}

export interface LocalImage extends LayoutImage {
  /** The unpacked root filesystem: never written to (containers get an overlay above it). */
  rootfs: string;
}

const INDEX_MEDIA_TYPES = new Set(["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]);
/** The OCI layout annotation naming a tag (`skopeo copy oci:dir:<tag>` reads the same). */
export const REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name";

export const hostPlatform = (): string => `linux/${process.arch === "x64" ? "amd64" : process.arch}`;

/** Tag and digest of `repository[:tag][@digest]`; a reference with neither means the tag `latest`. */
export function parseReference(image: string, repository: string): { tag?: string; digest?: string } {
  const rest = image.slice(repository.length);
  const at = rest.indexOf("@");
  const digest = at >= 0 ? rest.slice(at + 1) : undefined;
  const tagPart = at >= 0 ? rest.slice(0, at) : rest;
  const tag = tagPart.startsWith(":") ? tagPart.slice(1) : digest ? undefined : "latest";
  return { ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export class ImagePlatformError extends Error {
  readonly reason = "CreateContainerError";
}

const blobPath = (layout: string, digest: string): string => join(layout, "blobs", ...digest.split(":"));
const readJson = <T>(file: string): T => JSON.parse(readFileSync(file, "utf8")) as T;

/**
 * The image in the OCI layout at `layout` that `reference` names, for `platform` (`linux/amd64`): by digest
 * (an index's or a platform manifest's), or, when `byTag`, by the tag in the index entry's ref.name annotation.
 * Undefined when the layout does not hold it; an error when it holds it for another platform only.
 */
export function findInLayout(layout: string, reference: { tag?: string; digest?: string }, platform: string, byTag: boolean): LayoutImage | undefined {
  const indexFile = join(layout, "index.json");
  if (!existsSync(indexFile)) return undefined;
  for (const top of readJson<Index>(indexFile).manifests) {
    const nested = INDEX_MEDIA_TYPES.has(top.mediaType) ? readJson<Index>(blobPath(layout, top.digest)).manifests : [top];
    let candidates: Descriptor[] = [];
    if (reference.digest) candidates = top.digest === reference.digest ? nested : nested.filter((m) => m.digest === reference.digest);
    else if (byTag && reference.tag && top.annotations?.[REF_NAME_ANNOTATION] === reference.tag) candidates = nested;
    if (candidates.length === 0) continue;
    const entry = candidates.find((m) => !m.platform || `${m.platform.os}/${m.platform.architecture}` === platform);
    const manifestDigest = entry?.digest ?? candidates[0]!.digest;
    const manifest = readJson<{ config: Descriptor; layers: Descriptor[] }>(blobPath(layout, manifestDigest));
    const config = readJson<ImageConfig>(blobPath(layout, manifest.config.digest));
    if (`${config.os}/${config.architecture}` !== platform) {
      throw new ImagePlatformError(`the image's root filesystem is ${config.os}/${config.architecture}; this node runs ${platform}`);
    }
    return {
      layout,
      resolvedDigest: reference.digest ?? top.digest,
      manifestDigest,
      config,
      layers: manifest.layers.map((l) => blobPath(layout, l.digest)),
    };
  }
  return undefined;
}

/**
 * Applies the layers in order into `root` as root (owners and modes kept), with OCI whiteouts: `.wh.<name>`
 * deletes what lower layers put at <name>, `.wh..wh..opq` empties its directory of lower layers' entries.
 */
export async function unpackLayers(layers: string[], root: string): Promise<void> {
  mkdirSync(root, { recursive: true });
  for (const layer of layers) {
    const { stdout } = await run("tar", ["-tzf", layer], { maxBuffer: 256 << 20 });
    const entries = stdout.split("\n").map((e) => e.replace(/^\.\//, "").replace(/\/$/, ""));
    for (const entry of entries) {
      const base = entry.slice(entry.lastIndexOf("/") + 1);
      if (!base.startsWith(".wh.")) continue;
      const dir = join(root, dirname(entry));
      if (base === ".wh..wh..opq") rmSync(dir, { recursive: true, force: true });
      else rmSync(join(dir, base.slice(".wh.".length)), { recursive: true, force: true });
    }
    await run("tar", ["-xzf", layer, "-C", root, "--numeric-owner", "--same-permissions", "--same-owner", "--exclude=.wh.*", "--exclude=*/.wh.*"]);
  }
}

export interface LocalImagesOptions {
  /** OCI layouts to look in, read at each resolve (a layout built after the nodes started is found). */
  layouts: string[];
  /** Where unpacked root filesystems live, one directory per manifest digest. */
  cacheDir: string;
  /** Also resolve tags (the layout's ref.name); false leaves tag references to the checkout's CLI. */
  byTag: boolean;
  platform?: string;
}

/** Resolves references to local images and unpacks each once (concurrent starts of one image share the work). */
export class LocalImages {
  private readonly unpacking = new Map<string, Promise<string>>();

  constructor(private readonly options: LocalImagesOptions) {}

  get layouts(): string[] {
    return this.options.layouts;
  }

  get byTag(): boolean {
    return this.options.byTag;
  }

  /** The local image `image` (an image of `repository`) names, unpacked; undefined when no layout holds it. */
  async resolve(image: string, repository: string): Promise<LocalImage | undefined> {
    const reference = parseReference(image, repository);
    const platform = this.options.platform ?? hostPlatform();
    for (const layout of this.options.layouts) {
      const found = findInLayout(layout, reference, platform, this.options.byTag);
      if (found) return { ...found, rootfs: await this.unpacked(found) };
    }
    return undefined;
  }

  private unpacked(image: LayoutImage): Promise<string> {
    const dir = join(this.options.cacheDir, image.manifestDigest.replace(":", "-"), "rootfs");
    let pending = this.unpacking.get(dir);
    if (!pending) {
      pending = this.unpack(image, dir).finally(() => this.unpacking.delete(dir));
      this.unpacking.set(dir, pending);
    }
    return pending;
  }

  private async unpack(image: LayoutImage, dir: string): Promise<string> {
    if (existsSync(dir)) {
      // Its mtime says when a container last started from it.
      const now = new Date();
      utimesSync(dir, now, now);
      return dir;
    }
    this.pruneUnused();
    // Unpacked beside, then renamed: a directory at `dir` is always complete, even after a crash mid-unpack
    // or with another node agent (another cluster) unpacking the same digest at the same time.
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    await unpackLayers(image.layers, tmp);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      rmSync(tmp, { recursive: true, force: true });
      if (!existsSync(dir)) throw err;
    }
    return dir;
  }

  /** Each new commit's image is a new digest: without this the cache would grow by one image per build. */
  private pruneUnused(): void {
    if (!existsSync(this.options.cacheDir)) return;
    for (const entry of readdirSync(this.options.cacheDir)) {
      const rootfs = join(this.options.cacheDir, entry, "rootfs");
      if (existsSync(rootfs) && Date.now() - statSync(rootfs).mtimeMs > UNUSED_MS) rmSync(join(this.options.cacheDir, entry), { recursive: true, force: true });
    }
  }
}
