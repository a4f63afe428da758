// Runs one container of Ballast's image as a local process: the image's entrypoint is `ballast`, volume
// mounts are bind mounts in a private mount namespace, output goes to a log file like /var/log/pods.
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

/** A POSIX sh script that bind-mounts the volumes (parents first) and execs the process, keeping its pid. */
export function startScript(mounts: Mount[], workingDir: string, argv: string[]): string {
  const lines = ["#!/bin/sh", "set -e"];
  for (const m of [...mounts].sort((a, b) => a.mountPath.length - b.mountPath.length)) {
    if (!posix.isAbsolute(m.mountPath) || posix.normalize(m.mountPath) === "/") {
      throw new CreateContainerError(`mountPath ${m.mountPath} must be an absolute path other than /`);
    }
    lines.push(`mkdir -p ${quote(m.mountPath)}`, `mount --bind ${quote(m.hostPath)} ${quote(m.mountPath)}`);
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${quote(m.mountPath)}`);
  }
  lines.push(`cd ${quote(workingDir)}`, `exec ${argv.map(quote).join(" ")}`);
  return `${lines.join("\n")}\n`;
}

export interface LaunchSpec {
  dir: string;
  logFile: string;
  mounts: Mount[];
  workingDir: string;
  argv: string[];
  env: Record<string, string>;
}

const canUseMountNamespace = process.getuid?.() === 0;

export function launchContainer(spec: LaunchSpec): ChildProcess {
  mkdirSync(spec.dir, { recursive: true });
  mkdirSync(spec.workingDir, { recursive: true });
  let command: string;
  let args: string[];
  if (spec.mounts.length > 0) {
    if (!canUseMountNamespace) throw new CreateContainerError("volume mounts need a private mount namespace, which needs root: run `ballast dev up` as root");
    const script = join(spec.dir, "start.sh");
    writeFileSync(script, startScript(spec.mounts, spec.workingDir, spec.argv), { mode: 0o755 });
    command = "unshare";
    args = ["--mount", "--propagation", "private", "/bin/sh", script];
  } else {
    [command, ...args] = spec.argv as [string, ...string[]];
  }
  const out = openSync(spec.logFile, "a");
  try {
    const child = spawn(command, args, { cwd: spec.workingDir, env: spec.env, stdio: ["ignore", out, out], detached: true });
    if (child.pid !== undefined) writeFileSync(join(spec.dir, "pid"), String(child.pid));
    return child;
  } finally {
    closeSync(out);
  }
}
