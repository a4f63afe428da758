// What `make image` (hack/image/build.sh) wrote, read back through the OCI layout as a runtime would:
// index → platform manifest → config and layers; and the amd64 root filesystem unpacked to run it.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

export interface ImageDigests {
  index: string;
  /** "linux/amd64" → manifest digest */
  platforms: Record<string, string>;
}

/** Runs hack/image/build.sh into `outDir` (downloads and npm ci are cached; dist/ is compiled afresh). */
export async function buildImage(outDir: string, extraEnv: Record<string, string> = {}): Promise<ImageDigests> {
  // The build script runs `node` and `npm`: the test's own Node 24 first on PATH.
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}`, ...extraEnv };
  await run(join(repoRoot, "hack/image/build.sh"), [outDir], { cwd: repoRoot, env, maxBuffer: 64 << 20 });
  return readDigests(outDir);
}

export function readDigests(outDir: string): ImageDigests {
  const lines = readFileSync(join(outDir, "digests"), "utf8")
    .trim()
    .split("\n")
    .map((l) => l.split(" ") as [string, string]);
  return {
    index: lines.find(([what]) => what === "index")![1],
    platforms: Object.fromEntries(lines.filter(([what]) => what !== "index")),
  };
}

export interface ImageConfig {
  architecture: string;
  os: string;
  config: { User: string; Entrypoint: string[]; Cmd: string[]; Env: string[]; WorkingDir: string; Labels: Record<string, string> };
}

interface Descriptor {
  mediaType: string;
  digest: string;
  platform?: { architecture: string; os: string };
}

const blobPath = (layout: string, digest: string): string => join(layout, "blobs", ...digest.split(":"));
const readBlob = <T>(layout: string, digest: string): T => JSON.parse(readFileSync(blobPath(layout, digest), "utf8")) as T;

export interface PlatformImage {
  manifestDigest: string;
  config: ImageConfig;
  /** Gzipped layer tarballs, lowest first. */
  layers: string[];
}

/** The image of one architecture in the OCI layout at `layout` (its index.json names the multi-arch index). */
export function platformImage(layout: string, arch: string): PlatformImage {
  const top = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as { manifests: Descriptor[] };
  const index = readBlob<{ manifests: Descriptor[] }>(layout, top.manifests[0]!.digest);
  const entry = index.manifests.find((m) => m.platform?.os === "linux" && m.platform.architecture === arch);
  if (!entry) throw new Error(`the image index has no linux/${arch} manifest`);
  const manifest = readBlob<{ config: Descriptor; layers: Descriptor[] }>(layout, entry.digest);
  return {
    manifestDigest: entry.digest,
    config: readBlob<ImageConfig>(layout, manifest.config.digest),
    layers: manifest.layers.map((l) => blobPath(layout, l.digest)),
  };
}

/** Unpacks the layers in order into `root`, keeping owners and modes (the test runs as root). */
export async function unpackRootfs(image: PlatformImage, root: string): Promise<void> {
  for (const layer of image.layers) {
    const { stdout } = await run("tar", ["-tzf", layer], { maxBuffer: 256 << 20 });
    // Whiteouts would need overlay semantics; a single-build image must not have any.
    if (/(^|\/)\.wh\./m.test(stdout)) throw new Error(`layer ${layer} has whiteout entries`);
    await run("tar", ["-xzf", layer, "-C", root, "--numeric-owner", "--same-permissions"]);
  }
}

/**
 * Runs the image's entrypoint with `args` inside `root` (chroot through unshare --root), as the image's
 * user, in its working directory, with only its environment: nothing of the host's files or variables.
 */
export function runInImage(root: string, config: ImageConfig, args: string[]): ChildProcess {
  const [uid, gid] = config.config.User.split(":");
  const env = Object.fromEntries(config.config.Env.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  return spawn(
    "/usr/bin/unshare",
    ["--root", root, "--wd", config.config.WorkingDir, "--setuid", uid!, "--setgid", gid ?? uid!, "--", ...config.config.Entrypoint, ...args],
    {
      env,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
}

/** Waits for a process started by runInImage to exit; its exit code and output. */
export async function finished(child: ChildProcess): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c: Buffer) => (stdout += c.toString("utf8")));
  child.stderr!.on("data", (c: Buffer) => (stderr += c.toString("utf8")));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", resolve);
  });
  return { code, stdout, stderr };
}
