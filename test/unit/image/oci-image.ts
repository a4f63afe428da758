// What `make image` (hack/image/build.sh) wrote, read back through the OCI layout as a runtime would:
// index → platform manifest → config and layers; and the amd64 root filesystem unpacked to run it.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { findInLayout, unpackLayers, type ImageConfig } from "../../../src/devcluster/local-images.js";

const run = promisify(execFile);
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

export interface ImageDigests {
  index: string;
  /** "linux/amd64" → manifest digest */
  platforms: Record<string, string>;
}

/**
 * This commit's image in `outDir`: hack/image/ensure-image.sh reuses a build of the same clean commit there
 * (the local nodes' integration test may have made it), else builds; under a lock, so builds never race.
 */
export async function ensureImage(outDir: string): Promise<ImageDigests> {
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
  await run(join(repoRoot, "hack/image/ensure-image.sh"), [outDir], { cwd: repoRoot, env, maxBuffer: 64 << 20 });
  return readDigests(outDir);
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

export type { ImageConfig };

export interface PlatformImage {
  manifestDigest: string;
  config: ImageConfig;
  /** Gzipped layer tarballs, lowest first. */
  layers: string[];
}

/** The image of one architecture in the OCI layout at `layout` (its index.json names the multi-arch index). */
export function platformImage(layout: string, arch: string): PlatformImage {
  const top = JSON.parse(readFileSync(join(layout, "index.json"), "utf8")) as { manifests: { digest: string }[] };
  // Found the way the local nodes find an image named by the index's digest.
  const image = findInLayout(layout, { digest: top.manifests[0]!.digest }, `linux/${arch}`, false);
  if (!image) throw new Error(`the image index has no linux/${arch} manifest`);
  return { manifestDigest: image.manifestDigest, config: image.config, layers: image.layers };
}

/** Unpacks the layers in order into `root`, keeping owners and modes (the test runs as root). */
export async function unpackRootfs(image: PlatformImage, root: string): Promise<void> {
  await unpackLayers(image.layers, root);
}

/**
 * Runs the image's entrypoint with `args` inside `root` (chroot through unshare --root), as the image's
 * user, in its working directory, with only its environment: nothing of the host's files or variables.
 */
export function runInImage(root: string, config: ImageConfig, args: string[]): ChildProcess {
  const [uid, gid] = config.config.User!.split(":");
  const env = Object.fromEntries(config.config.Env!.map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  return spawn(
    "/usr/bin/unshare",
    ["--root", root, "--wd", config.config.WorkingDir!, "--setuid", uid!, "--setgid", gid ?? uid!, "--", ...config.config.Entrypoint!, ...args],
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
