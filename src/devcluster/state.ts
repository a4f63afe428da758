// The cluster directory's record of what `ballast dev up` started, so `down` and `status` work from any process.
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ControlPlanePorts } from "./controlplane.js";

export interface RecordedProcess {
  name: string;
  pid: number;
  log: string;
  command: string;
  args: string[];
}

export interface ClusterState {
  dir: string;
  kubernetesVersion: string;
  kubeconfig: string;
  server: string;
  kubectl?: string;
  ports: ControlPlanePorts;
  processes: RecordedProcess[];
  nodes: string[];
  /** Pods get 127.<podOctet>.x.y; Services 127.<serviceOctet>.x.y. */
  podOctet: number;
  serviceOctet: number;
  /** Set when `dev up --prometheus` started one. */
  prometheusUrl?: string;
  /** Set when `dev up --s3` started SeaweedFS: its endpoint, bucket and the 0600 file with its keys (never the keys). */
  s3?: { endpoint: string; bucket: string; envFile: string };
  /** Set when `dev up --registry` started one: host:port. */
  registry?: string;
  startedAt: string;
}

export const stateFile = (dir: string) => join(dir, "state.json");

export function readState(dir: string): ClusterState | undefined {
  const file = stateFile(dir);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as ClusterState;
}

/** Written after every process start, atomically, so a crash mid-`up` still leaves what `down` needs. */
export function writeState(state: ClusterState): void {
  const file = stateFile(state.dir);
  writeFileSync(`${file}.tmp`, JSON.stringify(state, null, 2));
  renameSync(`${file}.tmp`, file);
}
