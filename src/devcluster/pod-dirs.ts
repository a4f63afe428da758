// Where the local nodes keep each pod's files: <cluster dir>/pods/<namespace>_<name>_<uid>/.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

export const podsRoot = (clusterDir: string) => join(clusterDir, "pods");
export const podDir = (clusterDir: string, ns: string, name: string, uid: string) => join(podsRoot(clusterDir), `${ns}_${name}_${uid}`);
export const containerDir = (pod: string, container: string) => join(pod, "containers", container);
export const volumeDir = (pod: string, volume: string) => join(pod, "volumes", volume);
/** Where the local volume provisioner keeps claims' data, and the only place it deletes from. */
export const claimsRoot = (clusterDir: string) => join(clusterDir, "volumes");
/** A PersistentVolumeClaim's data outlives its pods: one host directory per claim. */
export const claimDir = (clusterDir: string, ns: string, claim: string) => join(claimsRoot(clusterDir), ns, claim);

/** Every `<container>.pid` file under the pods root: what `dev down` kills when the node agent could not. */
export function podProcessPidFiles(clusterDir: string): string[] {
  const root = podsRoot(clusterDir);
  if (!existsSync(root)) return [];
  const files: string[] = [];
  for (const pod of readdirSync(root)) {
    const containers = join(root, pod, "containers");
    if (!existsSync(containers)) continue;
    for (const c of readdirSync(containers)) {
      const pid = join(containers, c, "pid");
      if (existsSync(pid)) files.push(pid);
    }
  }
  return files;
}
