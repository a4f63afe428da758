// Runs one container of Ballast's image as a local process, output to a log file like /var/log/pods. Two
// modes: the checkout's CLI (the image's entrypoint is `ballast`; volume mounts are bind mounts in a private
// mount namespace), or the image's own root filesystem (a start script from image-container.ts).
import type { V1Container } from "@kubernetes/client-node";
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join, posix } from "node:path";
import { expandVars } from "./pod-env.js";

export class CreateContainerError extends Error {
  readonly reason = "CreateContainerError";
}

/** Ballast's image at any tag or digest: `repo`, `repo:tag`, `repo@sha256:…`. */
export function isBallastImage(image: string | undefined, repository: string): boolean {
  if (!image) return false;
  if (image === repository) return true;
  return image.startsWith(`${repository}:`) || image.startsWith(`${repository}@`);
}

/** The arguments to the `ballast` CLI: `args`, or `command` when it starts with ballast (the image's entrypoint). */
export function ballastArguments(container: V1Container, env: Record<string, string>): string[] {
  const expand = (xs: string[] | undefined) => (xs ?? []).map((x) => expandVars(x, env));
  const command = expand(container.command);
  const args = expand(container.args);
  if (command.length === 0) return args;
  const [entry, ...rest] = command;
  if (entry !== "ballast" && !entry!.endsWith("/ballast")) {
    throw new CreateContainerError(`container "${container.name}": command must run the image's entrypoint \`ballast\`, got "${entry}"`);
  }
  return [...rest, ...args];
}

export interface Mount {
  hostPath: string;
  mountPath: string;
  readOnly: boolean;
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

// Volume sources are first bound under a private tmpfs at this path, then onto their mountPaths: a volume
// mounted at /tmp must not hide the source of another volume that lives under /tmp (the cluster dir may).
export const MOUNT_STAGING_DIR = "/.ballast-volumes";

/**
 * A POSIX sh script that bind-mounts the volumes (parents first, via staging) and execs the process, keeping
 * its pid. `pins` are host directories the process itself needs (Node, Ballast's files): they are staged too
 * and argv is rewritten to reach them there, so no volume (say one at /tmp) can hide the program from itself.
 */
export function startScript(mounts: Mount[], workingDir: string, argv: string[], pins: string[] = []): string {
  // cd before mounting: the working directory stays reachable even if a volume hides its path.
  const lines = ["#!/bin/sh", "set -e", `cd ${quote(workingDir)}`];
  const ordered = [...mounts].sort((a, b) => a.mountPath.length - b.mountPath.length);
  let exec = argv;
  if (ordered.length > 0) {
    lines.push(`mkdir -p ${MOUNT_STAGING_DIR}`, `mount -t tmpfs -o size=64k,mode=755 tmpfs ${MOUNT_STAGING_DIR}`);
    pins.forEach((pin, i) => {
      const staged = `${MOUNT_STAGING_DIR}/pin${i}`;
      lines.push(`mkdir ${staged}`, `mount --bind ${quote(pin)} ${staged}`);
      exec = exec.map((a) => (a === pin || a.startsWith(`${pin}/`) ? staged + a.slice(pin.length) : a));
    });
  }
  ordered.forEach((m, i) => {
    if (!posix.isAbsolute(m.mountPath) || posix.normalize(m.mountPath) === "/") {
      throw new CreateContainerError(`mountPath ${m.mountPath} must be an absolute path other than /`);
    }
    const staged = `${MOUNT_STAGING_DIR}/${i}`;
    // A file (a subPath into a ConfigMap, a hostPath file) mounts onto a file, a directory onto a directory.
    lines.push(`if [ -d ${quote(m.hostPath)} ]; then mkdir ${staged}; else touch ${staged}; fi`, `mount --bind ${quote(m.hostPath)} ${staged}`);
  });
  ordered.forEach((m, i) => {
    const staged = `${MOUNT_STAGING_DIR}/${i}`;
    const target = quote(m.mountPath);
    lines.push(`if [ -d ${staged} ]; then mkdir -p ${target}; else mkdir -p "$(dirname ${target})" && touch ${target}; fi`, `mount --bind ${staged} ${target}`);
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${target}`);
  });
  lines.push(`exec ${exec.map(quote).join(" ")}`);
  return `${lines.join("\n")}\n`;
}

export interface LaunchSpec {
  dir: string;
  logFile: string;
  mounts: Mount[];
  workingDir: string;
  argv: string[];
  /** Host directories the program needs (see startScript). */
  pins: string[];
  env: Record<string, string>;
}

/** A container from the image's root filesystem: its start script (imageStartScript) does all the rest. */
export interface ImageLaunchSpec {
  dir: string;
  logFile: string;
  script: string;
  env: Record<string, string>;
}

/** Private mount namespaces (volume mounts, the termination message file) need root. */
export const canUseMountNamespace = process.getuid?.() === 0;

export function launchContainer(spec: LaunchSpec | ImageLaunchSpec): ChildProcess {
  mkdirSync(spec.dir, { recursive: true });
  let script: string | undefined;
  let argv: string[] = [];
  let cwd = spec.dir;
  if ("script" in spec) {
    if (!canUseMountNamespace)
      throw new CreateContainerError("running the image's root filesystem needs mounts and chroot, which need root: run `ballast dev up` as root");
    script = spec.script;
  } else {
    cwd = spec.workingDir;
    mkdirSync(spec.workingDir, { recursive: true });
    if (spec.mounts.length > 0) {
      if (!canUseMountNamespace) throw new CreateContainerError("volume mounts need a private mount namespace, which needs root: run `ballast dev up` as root");
      script = startScript(spec.mounts, spec.workingDir, spec.argv, spec.pins);
    } else {
      argv = spec.argv;
    }
  }
  if (script !== undefined) {
    const file = join(spec.dir, "start.sh");
    writeFileSync(file, script, { mode: 0o755 });
    argv = ["unshare", "--mount", "--propagation", "private", "/bin/sh", file];
  }
  const [command, ...args] = argv as [string, ...string[]];
  const out = openSync(spec.logFile, "a");
  try {
    const child = spawn(command, args, { cwd, env: spec.env, stdio: ["ignore", out, out], detached: true });
    if (child.pid !== undefined) writeFileSync(join(spec.dir, "pid"), String(child.pid));
    return child;
  } finally {
    closeSync(out);
  }
}
