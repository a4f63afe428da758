// A container run from the image's root filesystem, as a runtime would: an overlay (the unpacked image as the
// read-only lower layer, a fresh writable upper per start), /proc, a minimal /dev, the pod's /etc/hosts and the
// volumes mounted inside it, then chroot into it as the image's (or securityContext's) user, with the image's
// entrypoint, working directory and environment under the pod's.
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { existsSync, lstatSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { CreateContainerError, type Mount } from "./container-process.js";
import { ContainerConfigError, expandVars } from "./pod-env.js";
import type { LocalImage } from "./local-images.js";

/** containerd's PATH for images whose config sets none. */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** The host's tools the start script runs before it enters the image. */
const HOST_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
const UNSHARE = ["/usr/bin/unshare", "/bin/unshare"].find((p) => existsSync(p)) ?? "unshare";
/** The device nodes a runtime gives every container (runc's defaults, without the tty). */
const DEVICES = ["null", "zero", "full", "random", "urandom"];

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface ImageProcess {
  uid: number;
  gid: number;
  workingDir: string;
  argv: string[];
  env: Record<string, string>;
  readOnlyRootFilesystem: boolean;
}

/** `User` of an image config: numeric `uid[:gid]` (no /etc/passwd lookup: the runtime may not have one either). */
function imageUser(user: string | undefined): { uid: number; gid?: number } {
  if (!user) return { uid: 0, gid: 0 };
  const [u, g] = user.split(":");
  const uid = Number(u);
  const gid = g === undefined ? undefined : Number(g);
  if (!Number.isInteger(uid) || (gid !== undefined && !Number.isInteger(gid))) {
    throw new CreateContainerError(`the image's user "${user}" is not numeric; the local nodes do not look users up by name`);
  }
  return { uid, ...(gid !== undefined ? { gid } : {}) };
}

/** The home directory /etc/passwd of the image gives `uid`, else "/" (what runc sets). */
function homeOf(rootfs: string, uid: number): string {
  const passwd = join(rootfs, "etc/passwd");
  if (!existsSync(passwd)) return "/";
  for (const line of readFileSync(passwd, "utf8").split("\n")) {
    const fields = line.split(":");
    if (fields[2] === String(uid) && fields[5]) return fields[5];
  }
  return "/";
}

/**
 * What runs, as Kubernetes combines the image with the container: command replaces the entrypoint (and drops
 * the image's Cmd), args replace Cmd; env over the image's Env; securityContext (container over pod) over the
 * image's User; workingDir over the image's WorkingDir. `runAsNonRoot` refuses uid 0 as the kubelet does.
 */
export function imageProcess(
  pod: V1Pod,
  container: V1Container,
  image: LocalImage,
  podEnv: Record<string, string>,
  runtimeEnv: Record<string, string>,
): ImageProcess {
  const config = image.config.config;
  const imageEnv = Object.fromEntries((config.Env ?? []).map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]));
  const podSc = pod.spec?.securityContext ?? {};
  const sc = container.securityContext ?? {};
  const fromImage = imageUser(config.User);
  const uid = sc.runAsUser ?? podSc.runAsUser ?? fromImage.uid;
  const gid = sc.runAsGroup ?? podSc.runAsGroup ?? fromImage.gid ?? 0;
  if (uid === 0 && (sc.runAsNonRoot ?? podSc.runAsNonRoot)) {
    throw new ContainerConfigError("container has runAsNonRoot and image will run as root");
  }
  const expand = (xs: string[] | undefined) => (xs ?? []).map((x) => expandVars(x, podEnv));
  const argv = container.command?.length
    ? [...expand(container.command), ...expand(container.args)]
    : [...(config.Entrypoint ?? []), ...(container.args?.length ? expand(container.args) : (config.Cmd ?? []))];
  if (argv.length === 0) throw new CreateContainerError(`container "${container.name}": the image has no entrypoint and the container no command`);
  const env = { PATH: DEFAULT_PATH, ...imageEnv, HOME: homeOf(image.rootfs, uid), ...runtimeEnv, ...podEnv };
  return {
    uid,
    gid,
    workingDir: container.workingDir || config.WorkingDir || "/",
    argv,
    env,
    readOnlyRootFilesystem: sc.readOnlyRootFilesystem ?? false,
  };
}

/**
 * Refuses a mount path that passes through a symbolic link of the image: the start script creates mount points
 * with the host's tools, which would follow an absolute link out of the root filesystem onto the host.
 */
export function checkMountPaths(rootfs: string, mounts: Mount[]): void {
  for (const m of mounts) {
    if (!posix.isAbsolute(m.mountPath) || posix.normalize(m.mountPath) === "/") {
      throw new CreateContainerError(`mountPath ${m.mountPath} must be an absolute path other than /`);
    }
    let path = rootfs;
    for (const part of posix.normalize(m.mountPath).split("/").filter(Boolean)) {
      path = join(path, part);
      if (!existsSync(path)) break;
      if (lstatSync(path).isSymbolicLink()) throw new CreateContainerError(`mountPath ${m.mountPath} passes through a symbolic link in the image`);
    }
  }
}

export interface ImageRootfsLayout {
  /** The unpacked image (read-only lower layer). */
  rootfs: string;
  /** A fresh directory for this start: the writable layer, overlay's work dir and the mount point. */
  layerDir: string;
  /** The pod's hosts file, mounted read-only at /etc/hosts. */
  etcHosts: string;
}

/**
 * The POSIX sh script, run in a private mount namespace, that assembles the container's root filesystem and
 * execs the process in it. Mount points are made in the writable layer before a read-only root is remounted
 * read-only, as runc does; nothing the script mounts is visible outside the namespace, so it dies with it.
 */
export function imageStartScript(layout: ImageRootfsLayout, mounts: Mount[], proc: ImageProcess): string {
  const root = join(layout.layerDir, "merged");
  const at = (path: string) => quote(posix.join(root, path));
  const lines = [
    "#!/bin/sh",
    "set -e",
    `IMAGE_PATH=${quote(proc.env.PATH ?? DEFAULT_PATH)}`,
    `PATH=${HOST_PATH}`,
    `mkdir -p ${quote(join(layout.layerDir, "upper"))} ${quote(join(layout.layerDir, "work"))} ${quote(root)}`,
    `mount -t overlay overlay -o ${quote(`lowerdir=${layout.rootfs},upperdir=${join(layout.layerDir, "upper")},workdir=${join(layout.layerDir, "work")}`)} ${quote(root)}`,
    `mkdir -p ${at("/proc")} ${at("/dev")} ${at("/etc")}`,
    `mount -t proc -o nosuid,nodev,noexec proc ${at("/proc")}`,
    `mount -t tmpfs -o nosuid,mode=755,size=64k tmpfs ${at("/dev")}`,
    ...DEVICES.map((d) => `touch ${at(`/dev/${d}`)} && mount --bind /dev/${d} ${at(`/dev/${d}`)}`),
    `ln -s /proc/self/fd ${at("/dev/fd")}`,
    ...["stdin", "stdout", "stderr"].map((name, fd) => `ln -s /proc/self/fd/${fd} ${at(`/dev/${name}`)}`),
    `mkdir ${at("/dev/shm")} && mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=64m shm ${at("/dev/shm")}`,
    `touch ${at("/etc/hosts")} && mount --bind ${quote(layout.etcHosts)} ${at("/etc/hosts")} && mount -o remount,bind,ro ${at("/etc/hosts")}`,
  ];
  // Parents first, so a volume inside another volume lands inside it.
  for (const m of [...mounts].sort((a, b) => a.mountPath.length - b.mountPath.length)) {
    const target = at(m.mountPath);
    // A file (a subPath into a ConfigMap, the termination message file) mounts onto a file, a directory onto a directory.
    lines.push(`if [ -d ${quote(m.hostPath)} ]; then mkdir -p ${target}; else mkdir -p "$(dirname ${target})" && touch ${target}; fi`);
    lines.push(`mount --bind ${quote(m.hostPath)} ${target}`);
    if (m.readOnly) lines.push(`mount -o remount,bind,ro ${target}`);
  }
  if (proc.readOnlyRootFilesystem) lines.push(`mount -o remount,bind,ro ${quote(root)}`);
  // unshare without namespace options: chroot, chdir, drop supplementary groups, setgid, setuid, exec (found on
  // the image's PATH, inside the image).
  lines.push(
    'export PATH="$IMAGE_PATH"',
    `exec ${UNSHARE} --root ${quote(root)} --wd ${quote(proc.workingDir)} --setgid ${proc.gid} --setuid ${proc.uid} -- ${proc.argv.map(quote).join(" ")}`,
  );
  return `${lines.join("\n")}\n`;
}
