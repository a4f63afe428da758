// A real Prometheus beside the local cluster (`ballast dev up --prometheus`): built from its Go module, it finds the
// operator and the serving pods through Kubernetes service discovery against the local API server, scrapes them
// as the shipped ServiceMonitor and PodMonitor do, and evaluates the shipped alert rules.
// Discovery works here because local pods run on the host's network with loopback pod IPs: the addresses the API
// server reports for a pod or an EndpointSlice are reachable from Prometheus on the same host, as in a real cluster.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import type { V1Service } from "@kubernetes/client-node";
import { parseAllDocuments, stringify } from "yaml";
import type { KubeClient, ResourceType } from "../kube/client.js";
import { serverSideApply } from "../kube/apply.js";
import { writeKubeconfig } from "./kubeconfig.js";
import { issueClientCert } from "./pki.js";
import { httpProbe } from "./probes.js";
import { isAlive, logTail, startDetached, stopProcess, type StartedProcess } from "./processes.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** The rules file the chart wraps into a PrometheusRule and deploy/ ships as one: Prometheus loads it as is. */
export const SHIPPED_RULES_FILE = join(repoRoot, "charts/ballast/rules/ballast-rules.yaml");

/** Prometheus's identity on the local API server: no group, only the discovery rights grantDiscovery gives it. */
export const PROMETHEUS_USER = "ballast-prometheus";

/** The shipped prometheus-operator objects: the dev Prometheus's scrape jobs are generated from them. */
export const SHIPPED_MONITORS_DIR = join(repoRoot, "deploy/components/prometheus-operator");
/** Where the Services those monitors select are (the operator's metrics Service). */
export const SHIPPED_SERVICES_DIR = join(repoRoot, "deploy/base");

const CLUSTER_ROLES: ResourceType = { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterroles", namespaced: false };
const CLUSTER_ROLE_BINDINGS: ResourceType = { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings", namespaced: false };

/** Path of `tool` built from hack/prometheus/go.mod (PROMETHEUS_BINARY / PROMTOOL_BINARY override it); builds it once when missing. */
export function locatePrometheusTool(tool: "prometheus" | "promtool", env: NodeJS.ProcessEnv = process.env): string {
  const override = tool === "prometheus" ? env.PROMETHEUS_BINARY : env.PROMTOOL_BINARY;
  if (override) return override;
  const script = join(repoRoot, "hack/prometheus/ensure-prometheus.sh");
  if (!existsSync(script)) throw new Error(`${script} is missing: run from a Ballast checkout, or set ${tool.toUpperCase()}_BINARY`);
  return execFileSync(script, [tool], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] }).trim();
}

export interface StaticTarget {
  job: string;
  /** host:port */
  target: string;
  labels?: Record<string, string>;
}

export interface PrometheusConfigInput {
  /** Kubeconfig Prometheus discovers targets with. */
  kubeconfig: string;
  /** ServiceMonitor and PodMonitor objects, rendered into scrape jobs. */
  monitors: Monitor[];
  /** The Services a ServiceMonitor may select. */
  services: V1Service[];
  ruleFiles: string[];
  /** Scrape and rule evaluation interval: short on a dev cluster so a window's change shows within seconds. */
  intervalSeconds: number;
  /** Targets outside the cluster, e.g. an operator run as a local process (it has no pod to discover). */
  staticTargets?: StaticTarget[];
}

interface MonitorEndpoint {
  port: string;
  path?: string;
  honorLabels?: boolean;
  relabelings?: { sourceLabels?: string[]; targetLabel?: string; regex?: string; action?: string; replacement?: string }[];
}

/** The part of prometheus-operator's ServiceMonitor / PodMonitor this generator understands. */
export interface Monitor {
  kind: "ServiceMonitor" | "PodMonitor";
  metadata: { name: string; namespace: string };
  spec: {
    selector: { matchLabels: Record<string, string> };
    namespaceSelector?: { any?: boolean; matchNames?: string[] };
    endpoints?: MonitorEndpoint[];
    podMetricsEndpoints?: MonitorEndpoint[];
  };
}

/** The objects of the given kinds in the YAML files of `dir` (others, e.g. a kustomization, are skipped). */
export function readManifests<T>(dir: string, kinds: string[]): T[] {
  const found: T[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      const value = doc.toJS() as { kind?: string } | null;
      if (value?.kind && kinds.includes(value.kind)) found.push(value as T);
    }
  }
  return found;
}

const metaLabel = (label: string) => `__meta_kubernetes_pod_label_${label.replace(/[^a-zA-Z0-9_]/g, "_")}`;
const matches = (labels: Record<string, string> | undefined, selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const keepPodLabels = (selector: Record<string, string>) =>
  Object.entries(selector).map(([label, value]) => ({ source_labels: [metaLabel(label)], regex: escapeRegex(value), action: "keep" }));

/** What a job discovers, before the target labels: pods of some namespaces, kept by relabelling. */
interface Discovery {
  namespaces?: string[];
  keep: Record<string, unknown>[];
  labels: Record<string, unknown>[];
}

/**
 * The scrape jobs of a monitor, relabelled as prometheus-operator renders them (job and target labels included), so
 * a query that works against this Prometheus works against kube-prometheus-stack with the same monitors. Both kinds
 * discover pods: a PodMonitor's by its selector and container port name; a ServiceMonitor's through the Services it
 * selects among `services` (their pod selector and target port, ready pods only, as an EndpointSlice lists them),
 * because the API server refuses the local cluster's loopback pod IPs in EndpointSlices.
 */
export function scrapeJobs(monitor: Monitor, kubeconfig: string, services: V1Service[]): Record<string, unknown>[] {
  const { kind, metadata, spec } = monitor;
  const endpoints = (kind === "ServiceMonitor" ? spec.endpoints : spec.podMetricsEndpoints) ?? [];
  if (endpoints.length === 0) throw new Error(`${kind} ${metadata.namespace}/${metadata.name}: no endpoints`);
  const namespaces = spec.namespaceSelector?.any ? undefined : (spec.namespaceSelector?.matchNames ?? [metadata.namespace]);
  const jobs: Record<string, unknown>[] = [];
  endpoints.forEach((ep, i) => {
    const discoveries: Discovery[] = [];
    if (kind === "PodMonitor") {
      discoveries.push({
        ...(namespaces ? { namespaces } : {}),
        keep: [
          ...keepPodLabels(spec.selector.matchLabels),
          { source_labels: ["__meta_kubernetes_pod_container_port_name"], regex: escapeRegex(ep.port), action: "keep" },
        ],
        labels: [{ target_label: "job", replacement: `${metadata.namespace}/${metadata.name}` }],
      });
    } else {
      for (const svc of services) {
        const port = svc.spec?.ports?.find((p) => p.name === ep.port);
        const ns = svc.metadata?.namespace ?? "";
        if (!port || !matches(svc.metadata?.labels, spec.selector.matchLabels) || (namespaces && !namespaces.includes(ns))) continue;
        const target = port.targetPort ?? port.port;
        discoveries.push({
          namespaces: [ns],
          keep: [
            ...keepPodLabels(svc.spec?.selector ?? {}),
            typeof target === "string"
              ? { source_labels: ["__meta_kubernetes_pod_container_port_name"], regex: escapeRegex(target), action: "keep" }
              : { source_labels: ["__meta_kubernetes_pod_container_port_number"], regex: String(target), action: "keep" },
            { source_labels: ["__meta_kubernetes_pod_ready"], regex: "true", action: "keep" },
          ],
          labels: [
            { target_label: "service", replacement: svc.metadata!.name },
            { target_label: "job", replacement: svc.metadata!.name },
          ],
        });
      }
    }
    for (const d of discoveries) {
      jobs.push({
        job_name: `${kind === "ServiceMonitor" ? "serviceMonitor" : "podMonitor"}/${metadata.namespace}/${metadata.name}/${i}${jobs.length ? `-${jobs.length}` : ""}`,
        honor_labels: ep.honorLabels ?? false,
        metrics_path: ep.path ?? "/metrics",
        kubernetes_sd_configs: [{ role: "pod", kubeconfig_file: kubeconfig, ...(d.namespaces ? { namespaces: { names: d.namespaces } } : {}) }],
        relabel_configs: [
          ...d.keep,
          // As prometheus-operator does: a finished pod's IP may already belong to another pod.
          { source_labels: ["__meta_kubernetes_pod_phase"], regex: "(Failed|Succeeded)", action: "drop" },
          { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace" },
          { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
          { source_labels: ["__meta_kubernetes_pod_container_name"], target_label: "container" },
          ...d.labels,
          { target_label: "endpoint", replacement: ep.port },
          ...(ep.relabelings ?? []).map((r) => ({
            ...(r.sourceLabels ? { source_labels: r.sourceLabels } : {}),
            ...(r.targetLabel ? { target_label: r.targetLabel } : {}),
            ...(r.regex ? { regex: r.regex } : {}),
            ...(r.replacement !== undefined ? { replacement: r.replacement } : {}),
            ...(r.action ? { action: r.action.toLowerCase() } : {}),
          })),
        ],
      });
    }
  });
  return jobs;
}

const escapeRegex = (value: string) => value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** prometheus.yml: the monitors' jobs, any static targets, and the rule files. */
export function prometheusConfig(input: PrometheusConfigInput): Record<string, unknown> {
  const interval = `${input.intervalSeconds}s`;
  const staticJobs = new Map<string, StaticTarget[]>();
  for (const t of input.staticTargets ?? []) staticJobs.set(t.job, [...(staticJobs.get(t.job) ?? []), t]);
  return {
    global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
    rule_files: input.ruleFiles,
    scrape_configs: [
      ...input.monitors.flatMap((m) => scrapeJobs(m, input.kubeconfig, input.services)),
      ...[...staticJobs].map(([job, targets]) => ({
        job_name: job,
        honor_labels: true,
        static_configs: targets.map((t) => ({ targets: [t.target], labels: t.labels ?? {} })),
      })),
    ],
  };
}

interface RuleGroup {
  name: string;
  rules: { alert?: string; record?: string; expr: string; for?: string }[];
}

/**
 * The rule groups of a plain Prometheus rules file (`groups:`) or of PrometheusRule objects (their spec.groups),
 * so Prometheus loads exactly what the chart and deploy/ ship.
 */
export function ruleGroupsOf(text: string, source: string): RuleGroup[] {
  const groups: RuleGroup[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`${source}: not YAML: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as { kind?: string; groups?: RuleGroup[]; spec?: { groups?: RuleGroup[] } } | null;
    if (value === null) continue;
    const found = value.kind === "PrometheusRule" ? value.spec?.groups : value.groups;
    if (!Array.isArray(found)) throw new Error(`${source}: neither a rules file (groups:) nor a PrometheusRule (spec.groups)`);
    groups.push(...found);
  }
  return groups;
}

export interface StartPrometheusOptions {
  /** The cluster directory: its PKI signs Prometheus's client certificate; config, rules, data and log go under <dir>/prometheus. */
  dir: string;
  /** The API server's URL. */
  server: string;
  /** An admin client, to grant Prometheus its discovery rights. */
  admin: KubeClient;
  port: number;
  binary: string;
  ruleSources: string[];
  intervalSeconds?: number;
  staticTargets?: StaticTarget[];
  /**
   * Alert name → `for:` duration replacing the shipped one. Only for tests that must see an alert fire within
   * minutes: the shipped file itself is checked unmodified by promtool.
   */
  alertForOverrides?: Record<string, string>;
  signal?: AbortSignal;
}

export interface RunningPrometheus {
  url: string;
  process: StartedProcess & { command: string; args: string[] };
}

/** Writes the config and rules, grants discovery, starts Prometheus detached and returns once /-/ready answers (else stops it and throws). */
export async function startPrometheus(options: StartPrometheusOptions): Promise<RunningPrometheus> {
  const home = join(resolve(options.dir), "prometheus");
  const rulesDir = join(home, "rules");
  rmSync(rulesDir, { recursive: true, force: true });
  mkdirSync(rulesDir, { recursive: true, mode: 0o700 });
  const ruleFiles = options.ruleSources.map((source, i) => {
    const groups = ruleGroupsOf(readFileSync(source, "utf8"), source).map((g) => ({
      ...g,
      rules: g.rules.map((r) => (r.alert && options.alertForOverrides?.[r.alert] ? { ...r, for: options.alertForOverrides[r.alert] } : r)),
    }));
    const file = join(rulesDir, `${i}-rules.yaml`);
    writeFileSync(file, stringify({ groups }));
    return file;
  });

  const pkiDir = join(resolve(options.dir), "pki");
  const identity = await issueClientCert(pkiDir, { file: "prometheus", commonName: PROMETHEUS_USER });
  const kubeconfig = join(home, "prometheus.kubeconfig");
  writeKubeconfig(kubeconfig, {
    server: options.server,
    caCertFile: join(pkiDir, "ca.crt"),
    clientCertFile: identity.cert,
    clientKeyFile: identity.key,
    user: PROMETHEUS_USER,
  });
  await grantDiscovery(options.admin);

  const configFile = join(home, "prometheus.yml");
  const config = prometheusConfig({
    kubeconfig,
    monitors: readManifests<Monitor>(SHIPPED_MONITORS_DIR, ["ServiceMonitor", "PodMonitor"]),
    services: readManifests<V1Service>(SHIPPED_SERVICES_DIR, ["Service"]),
    ruleFiles,
    intervalSeconds: options.intervalSeconds ?? 2,
    staticTargets: options.staticTargets,
  });
  writeFileSync(configFile, stringify(config));
  const listen = `127.0.0.1:${options.port}`;
  const args = [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(home, "data")}`,
    `--web.listen-address=${listen}`,
    // A throwaway dev instance: a day of samples is plenty and keeps the disk bounded.
    "--storage.tsdb.retention.time=1d",
  ];
  const started = startDetached({ name: "prometheus", command: options.binary, args, log: join(home, "prometheus.log") });
  const running: RunningPrometheus = { url: `http://${listen}`, process: { ...started, command: options.binary, args } };
  try {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      options.signal?.throwIfAborted();
      if (!isAlive(started.pid)) throw new Error(`prometheus exited during start-up:\n${logTail(started.log)}`);
      if ((await httpProbe(`${running.url}/-/ready`, {}, 2000)).ok) return running;
      await sleep(250);
    }
    throw new Error(`prometheus not ready after 60 s (${running.url}/-/ready):\n${logTail(started.log)}`);
  } catch (err) {
    await stopProcess(started.pid);
    throw err;
  }
}

/** Prometheus may list and watch pods, which is all its pod discovery reads. */
async function grantDiscovery(admin: KubeClient): Promise<void> {
  await serverSideApply(
    admin,
    CLUSTER_ROLES,
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: PROMETHEUS_USER },
      // Every job discovers pods (see scrapeJobs): nothing else to read.
      rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"] }],
    },
    { fieldManager: "ballast-dev" },
  );
  await serverSideApply(
    admin,
    CLUSTER_ROLE_BINDINGS,
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: PROMETHEUS_USER },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: PROMETHEUS_USER },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: PROMETHEUS_USER }],
    },
    { fieldManager: "ballast-dev" },
  );
}
