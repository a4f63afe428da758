// A pod's volumes as host directories: emptyDir and PVCs are directories under the cluster dir,
// configMap / secret / downwardAPI / projected (ServiceAccount token) volumes are written out as files.
import type { V1KeyToPath, V1Pod, V1Volume } from "@kubernetes/client-node";
import { chmodSync, chownSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import type { PodApi } from "./pod-api.js";
import { fieldRefValue } from "./pod-env.js";
import { claimDir, volumeDir } from "./pod-dirs.js";

export class VolumeError extends Error {
  constructor(
    readonly volume: string,
    message: string,
  ) {
    super(`MountVolume.SetUp failed for volume "${volume}": ${message}`);
  }
}

interface FileEntry {
  path: string;
  content: string | Buffer;
  mode: number;
  /** uid the file belongs to (a token file, readable only by the containers' user); root when unset. */
  owner?: number | undefined;
}

function keyFiles(
  data: Record<string, string | Buffer>,
  items: V1KeyToPath[] | undefined,
  defaultMode: number,
  volume: string,
  optional: boolean,
): FileEntry[] {
  if (!items || items.length === 0) return Object.entries(data).map(([k, v]) => ({ path: k, content: v, mode: defaultMode }));
  const files: FileEntry[] = [];
  for (const item of items) {
    const value = data[item.key];
    if (value === undefined) {
      if (optional) continue;
      throw new VolumeError(volume, `configmap/secret key "${item.key}" not found`);
    }
    files.push({ path: item.path, content: value, mode: item.mode ?? defaultMode });
  }
  return files;
}

function safeRelative(volume: string, path: string): string {
  const norm = normalize(path);
  if (norm.startsWith("..") || norm.startsWith("/")) throw new VolumeError(volume, `path ${path} must be relative and stay inside the volume`);
  return norm;
}

/** Replaces the volume's contents in one rename, so a process never sees half a ConfigMap. */
function writeFilesAtomically(dir: string, volume: string, files: FileEntry[]): void {
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  for (const f of files) {
    const target = join(tmp, safeRelative(volume, f.path));
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, f.content, { mode: f.mode });
    // Exactly the mode the pod asked for, as the kubelet does: writeFile's mode is narrowed by the umask.
    chmodSync(target, f.mode);
    if (f.owner !== undefined) chownSync(target, f.owner, -1);
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

async function configMapFiles(
  api: PodApi,
  ns: string,
  name: string,
  items: V1KeyToPath[] | undefined,
  mode: number,
  volume: string,
  optional: boolean,
): Promise<FileEntry[]> {
  const cm = await api.readConfigMap(ns, name);
  if (!cm) {
    if (optional) return [];
    throw new VolumeError(volume, `configmap "${name}" not found`);
  }
  const data: Record<string, string | Buffer> = { ...(cm.data ?? {}) };
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) data[k] = Buffer.from(v, "base64");
  return keyFiles(data, items, mode, volume, optional);
}

async function secretFiles(
  api: PodApi,
  ns: string,
  name: string,
  items: V1KeyToPath[] | undefined,
  mode: number,
  volume: string,
  optional: boolean,
): Promise<FileEntry[]> {
  const secret = await api.readSecret(ns, name);
  if (!secret) {
    if (optional) return [];
    throw new VolumeError(volume, `secret "${name}" not found`);
  }
  const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")]));
  return keyFiles(data, items, mode, volume, optional);
}

/**
 * The kubelet's SetVolumeOwnership for a pod with fsGroup: everything in the volume gets the group, group read
 * (and write unless the volume is read-only), directories also setgid and search; so a non-root container
 * shares its emptyDirs and reads its Secrets through the group.
 */
function applyFsGroup(path: string, gid: number, readOnly: boolean): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  chownSync(path, -1, gid);
  const mask = (readOnly ? 0o440 : 0o660) | (st.isDirectory() ? 0o2110 : 0);
  chmodSync(path, (st.mode & 0o7777) | mask);
  if (st.isDirectory()) for (const entry of readdirSync(path)) applyFsGroup(join(path, entry), gid, readOnly);
}

/** The one runAsUser every container of the pod runs as, if any: the kubelet makes the token files theirs. */
function commonRunAsUser(pod: V1Pod): number | undefined {
  const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
  const uids = new Set(containers.map((c) => c.securityContext?.runAsUser ?? pod.spec?.securityContext?.runAsUser));
  const [uid] = uids;
  return uids.size === 1 ? uid : undefined;
}

/** Prepares every volume of the pod; returns volume name → host directory (or file, for hostPath files). */
export async function prepareVolumes(
  pod: V1Pod,
  podDirPath: string,
  clusterDir: string,
  api: PodApi,
  hostIP: string,
  podIP: string,
): Promise<Map<string, string>> {
  const ns = pod.metadata!.namespace!;
  const result = new Map<string, string>();
  const fsGroup = pod.spec?.securityContext?.fsGroup;
  for (const v of pod.spec?.volumes ?? []) {
    const path = await prepareVolume(v, pod, ns, podDirPath, clusterDir, api, hostIP, podIP);
    // Volumes the kubelet owns (not hostPath, not the claims' directories, which it leaves as provisioned).
    const kubeletOwned = v.emptyDir ?? v.configMap ?? v.secret ?? v.downwardAPI ?? v.projected;
    if (fsGroup !== undefined && kubeletOwned) applyFsGroup(path, fsGroup, !v.emptyDir);
    result.set(v.name, path);
  }
  return result;
}

async function prepareVolume(
  v: V1Volume,
  pod: V1Pod,
  ns: string,
  podDirPath: string,
  clusterDir: string,
  api: PodApi,
  hostIP: string,
  podIP: string,
): Promise<string> {
  const dir = volumeDir(podDirPath, v.name);
  if (v.emptyDir) {
    mkdirSync(dir, { recursive: true });
    // World-writable, as the kubelet makes an emptyDir: any user the containers run as can use it.
    chmodSync(dir, 0o777);
    return dir;
  }
  if (v.persistentVolumeClaim) {
    const claim = claimDir(clusterDir, ns, v.persistentVolumeClaim.claimName);
    mkdirSync(claim, { recursive: true });
    return claim;
  }
  if (v.hostPath) return v.hostPath.path;
  if (v.configMap) {
    writeFilesAtomically(
      dir,
      v.name,
      await configMapFiles(api, ns, v.configMap.name!, v.configMap.items, v.configMap.defaultMode ?? 0o644, v.name, v.configMap.optional ?? false),
    );
    return dir;
  }
  if (v.secret) {
    writeFilesAtomically(
      dir,
      v.name,
      await secretFiles(api, ns, v.secret.secretName!, v.secret.items, v.secret.defaultMode ?? 0o644, v.name, v.secret.optional ?? false),
    );
    return dir;
  }
  if (v.downwardAPI) {
    const files = (v.downwardAPI.items ?? []).map((item) => ({
      path: item.path,
      content: item.fieldRef ? fieldRefValue(pod, item.fieldRef.fieldPath, podIP, hostIP) : "",
      mode: item.mode ?? v.downwardAPI!.defaultMode ?? 0o644,
    }));
    writeFilesAtomically(dir, v.name, files);
    return dir;
  }
  if (v.projected) {
    const mode = v.projected.defaultMode ?? 0o644;
    const files: FileEntry[] = [];
    for (const src of v.projected.sources ?? []) {
      if (src.serviceAccountToken) {
        const sa = pod.spec?.serviceAccountName ?? "default";
        const audiences = src.serviceAccountToken.audience ? [src.serviceAccountToken.audience] : [];
        const token = await api.requestToken(pod, sa, audiences, src.serviceAccountToken.expirationSeconds ?? 3607);
        files.push({ path: src.serviceAccountToken.path, content: token, mode: 0o600, owner: commonRunAsUser(pod) });
      } else if (src.configMap) {
        files.push(...(await configMapFiles(api, ns, src.configMap.name!, src.configMap.items, mode, v.name, src.configMap.optional ?? false)));
      } else if (src.secret) {
        files.push(...(await secretFiles(api, ns, src.secret.name!, src.secret.items, mode, v.name, src.secret.optional ?? false)));
      } else if (src.downwardAPI) {
        for (const item of src.downwardAPI.items ?? []) {
          files.push({ path: item.path, content: item.fieldRef ? fieldRefValue(pod, item.fieldRef.fieldPath, podIP, hostIP) : "", mode: item.mode ?? mode });
        }
      }
    }
    writeFilesAtomically(dir, v.name, files);
    return dir;
  }
  const kind = Object.keys(v).find((k) => k !== "name") ?? "unknown";
  throw new VolumeError(
    v.name,
    `volume type ${kind} is not supported on Ballast's local nodes (emptyDir, persistentVolumeClaim, hostPath, configMap, secret, downwardAPI and projected are)`,
  );
}
