// Container logs of the local cluster's pods, read from disk (the files `kubectl logs` serves there):
// <cluster dir>/pods/<namespace>_<pod>_<uid>/containers/<container>/<restart>.log.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { containerDir, podDir, podsRoot } from "../devcluster/pod-dirs.js";

/** The log of the container's newest run (the highest restart number). */
export function containerLogFile(clusterDir: string, namespace: string, pod: string, uid: string, container: string): string {
  const dir = containerDir(podDir(clusterDir, namespace, pod, uid), container);
  const runs = existsSync(dir)
    ? readdirSync(dir)
        .map((f) => /^(\d+)\.log$/.exec(f))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1]))
    : [];
  return join(dir, `${runs.length ? Math.max(...runs) : 0}.log`);
}

/** Newest log of every container of the pods whose name starts with `podPrefix`, oldest pod first. */
export function podLogFiles(clusterDir: string, namespace: string, podPrefix: string): string[] {
  const root = podsRoot(clusterDir);
  if (!existsSync(root)) return [];
  const pods = readdirSync(root)
    .filter((d) => d.startsWith(`${namespace}_${podPrefix}`))
    .map((d) => join(root, d))
    .sort((a, b) => statSync(a).mtimeMs - statSync(b).mtimeMs);
  const files: string[] = [];
  for (const pod of pods) {
    const containers = join(pod, "containers");
    if (!existsSync(containers)) continue;
    for (const c of readdirSync(containers)) {
      const logs = readdirSync(join(containers, c)).filter((f) => /^\d+\.log$/.test(f));
      if (logs.length) files.push(join(containers, c, logs.sort((a, b) => Number.parseInt(a) - Number.parseInt(b)).at(-1)!));
    }
  }
  return files;
}

export function tailOf(file: string, lines = 15): string {
  try {
    return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log yet)";
  }
}
