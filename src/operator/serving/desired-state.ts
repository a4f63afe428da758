// What should exist for a ModelDeployment's serving: pure functions from the spec to the Deployment,
// Service and ConfigMap the operator applies. No I/O, so every rule here is unit-tested without a cluster.
import { createHash } from "node:crypto";
import type { V1ConfigMap, V1Container, V1ResourceRequirements, V1Deployment, V1EnvVar, V1Service, V1Volume, V1VolumeMount } from "@kubernetes/client-node";
import {
  API_VERSION,
  KIND,
  defaultAccuracyMetric,
  defaultDriftThreshold,
  parseStorageUri,
  type ResolvedModelDeployment,
  type StorageLocation,
} from "../../api/index.js";

export const LABEL_NAME = "app.kubernetes.io/name";
export const LABEL_INSTANCE = "app.kubernetes.io/instance";
export const LABEL_COMPONENT = "app.kubernetes.io/component";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const LABEL_MODEL_DEPLOYMENT = "ballast.dev/model-deployment";
export const LABEL_MODEL = "ballast.dev/model";
export const MANAGED_BY = "ballast-operator";
/** Pod template annotation: changes when the monitoring config changes, so the pods roll. */
export const ANNOTATION_CONFIG_HASH = "ballast.dev/monitoring-config-hash";
/** On a ModelDeployment: "external" leaves Deployment replicas to someone else (an HPA on the Deployment). */
export const ANNOTATION_REPLICAS_MANAGED_BY = "ballast.dev/replicas-managed-by";
/** On owned objects: hash of what we applied, so an unchanged object is not re-applied on every event. */
export const ANNOTATION_APPLIED_HASH = "ballast.dev/applied-hash";

/** The server listens here on the pod IP; only the sidecar talks to it. */
export const SERVER_PORT = 9000;
export const MONITORING_CONFIG_KEY = "monitoring.json";
export const MONITORING_CONFIG_DIR = "/etc/ballast";
/** Where pvc:// claims are mounted; `ballast serve --pvc-mount-root`. */
export const PVC_MOUNT_ROOT = "/mnt/models";
// The pod's writable places (the root filesystem is read-only) live under one tree, /run/ballast.
export const REQUEST_LOG_DIR = "/run/ballast/requests";
/** Writable scratch space (TMPDIR): the root filesystem is read-only. */
export const SCRATCH_DIR = "/run/ballast/tmp";
/** Non-root uid/gid of the serving containers (the image's `node` user is 1000; any non-zero id works). */
export const SERVING_UID = 65532;

export interface ServingNames {
  deployment: string;
  service: string;
  configMap: string;
}

/** Deterministic names derived from the owner: a restart or a second operator never makes a twin. */
export function servingNames(mdName: string): ServingNames {
  return { deployment: `${mdName}-serving`, service: mdName, configMap: `${mdName}-monitoring` };
}

export function selectorLabels(mdName: string): Record<string, string> {
  return { [LABEL_MODEL_DEPLOYMENT]: mdName, [LABEL_COMPONENT]: "serving" };
}

/** Label selector string of the serving pods (status.selector, for the scale subresource and HPAs). */
export function selectorString(mdName: string): string {
  return Object.entries(selectorLabels(mdName))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

function commonLabels(md: ResolvedModelDeployment): Record<string, string> {
  const name = md.metadata.name!;
  return {
    [LABEL_NAME]: "ballast",
    [LABEL_INSTANCE]: name,
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_MODEL]: md.spec.model.name,
    ...selectorLabels(name),
  };
}

export function ownerReference(md: ResolvedModelDeployment) {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: md.metadata.name!,
    uid: md.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

function metadataFor(md: ResolvedModelDeployment, name: string) {
  return { name, namespace: md.metadata.namespace!, labels: commonLabels(md), ownerReferences: [ownerReference(md)] };
}

/** Milliseconds of a Go duration as the schema accepts it ("1h30m", "250ms"). */
export function goDurationMs(d: string): number {
  const scale: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const [, n, unit] of d.matchAll(/(\d+)(ms|s|m|h)/g)) total += Number(n) * scale[unit!]!;
  return total;
}

/** sha256 of a canonical JSON rendering (keys sorted), short enough for an annotation. */
export function contentHash(value: unknown): string {
  return createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 16);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** What the sidecar reads from MONITORING_CONFIG_DIR/monitoring.json: the monitoring spec with defaults resolved. */
export function monitoringConfig(md: ResolvedModelDeployment): Record<string, unknown> {
  const m = md.spec.monitoring;
  const { method, thresholdMode, correction } = m.drift;
  // A fixed threshold only means something under thresholdMode fixed; calibrated thresholds come from the reference.
  const threshold = thresholdMode === "fixed" ? (m.drift.threshold ?? (method === "auto" ? undefined : defaultDriftThreshold(method))) : undefined;
  return {
    modelDeployment: { namespace: md.metadata.namespace, name: md.metadata.name },
    model: { name: md.spec.model.name, storageUri: md.spec.model.storageUri, version: md.spec.model.version },
    features: m.features,
    labelField: m.labelField,
    task: m.task,
    accuracyMetric: m.accuracyMetric ?? defaultAccuracyMetric(m.task),
    reference: m.reference,
    window: m.window,
    drift: { method, thresholdMode, correction, threshold },
    scrapeInterval: m.scrapeInterval,
  };
}

export function desiredConfigMap(md: ResolvedModelDeployment): V1ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: metadataFor(md, servingNames(md.metadata.name!).configMap),
    data: { [MONITORING_CONFIG_KEY]: `${JSON.stringify(monitoringConfig(md), null, 2)}\n` },
  };
}

export function desiredService(md: ResolvedModelDeployment): V1Service {
  const name = md.metadata.name!;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: metadataFor(md, servingNames(name).service),
    spec: {
      type: "ClusterIP",
      selector: selectorLabels(name),
      ports: [{ name: "http", port: md.spec.serving.port, targetPort: "http", protocol: "TCP" }],
    },
  };
}

/** The volume (if any) that makes the model store readable to `ballast serve --store <storageUri>`. */
export interface ModelVolume {
  volume: V1Volume;
  mount: V1VolumeMount;
}

/**
 * pvc://claim/path → the claim mounted read-only at /mnt/models/<claim>, where `ballast serve` resolves
 * pvc:// URIs; file:///path → that path inside the container's own filesystem (models baked into the
 * image, or the host on Ballast's local nodes), never a hostPath volume, which restricted pods may not
 * use; http(s):// → downloaded by the server itself. The last two need no volume.
 */
export function modelVolume(location: StorageLocation, opts: { readOnly: boolean } = { readOnly: true }): ModelVolume | undefined {
  if (location.scheme !== "pvc") return undefined;
  return {
    volume: { name: "model-store", persistentVolumeClaim: { claimName: location.claimName, readOnly: opts.readOnly } },
    mount: { name: "model-store", mountPath: `${PVC_MOUNT_ROOT}/${location.claimName}`, readOnly: opts.readOnly },
  };
}

/**
 * The version the serving pods are pinned to: the user's spec.model.version, else what the loop promoted or
 * rolled back to (status.targetVersion); undefined lets `ballast serve` pick the newest non-candidate version.
 */
export function pinnedVersion(md: ResolvedModelDeployment): string | undefined {
  return md.spec.model.version ?? md.status?.targetVersion;
}

export const restrictedContainerSecurity = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

const podEnv: V1EnvVar[] = [
  { name: "TMPDIR", value: SCRATCH_DIR },
  { name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } },
  { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
  { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
];

export interface DesiredDeploymentOptions {
  /** The Ballast image when spec.serving.image is unset (the operator's own version). */
  defaultImage: string;
}

export function desiredDeployment(md: ResolvedModelDeployment, opts: DesiredDeploymentOptions): V1Deployment {
  const name = md.metadata.name!;
  const names = servingNames(name);
  const serving = md.spec.serving;
  const image = serving.image ?? opts.defaultImage;
  const version = pinnedVersion(md);
  const location = parseStorageUri(md.spec.model.storageUri, "spec.model.storageUri");
  // pvc:// and file:// stores are writable: the sidecar keeps its request log there, where it outlives the pod
  // and the retraining Job reads it (<store>/<model>/_log/<pod>/). http(s):// stores leave it on an emptyDir.
  const logToStore = location.scheme === "pvc" || location.scheme === "file";
  // A read-only volume would force every mount read-only: the claim is writable, the server's mount is not.
  const store = modelVolume(location, { readOnly: !logToStore });
  const configHash = contentHash(desiredConfigMap(md).data);
  const userEnv = (serving.env ?? []) as V1EnvVar[];
  const env = [...podEnv, ...userEnv.filter((e) => !podEnv.some((d) => d.name === e.name))];
  const serverUrl = `http://$(POD_IP):${SERVER_PORT}`;

  const serverArgs = [
    "serve",
    "--store",
    md.spec.model.storageUri,
    "--model",
    md.spec.model.name,
    ...(version ? ["--version", version] : []),
    "--host",
    "$(POD_IP)",
    "--port",
    String(SERVER_PORT),
    "--pvc-mount-root",
    PVC_MOUNT_ROOT,
  ];
  const server: V1Container = {
    name: "server",
    image,
    imagePullPolicy: serving.imagePullPolicy,
    args: serverArgs,
    env,
    ports: [{ name: "model", containerPort: SERVER_PORT, protocol: "TCP" }],
    resources: serving.resources as V1ResourceRequirements | undefined,
    startupProbe: { httpGet: { path: "/v2/health/live", port: "model" }, periodSeconds: 2, failureThreshold: 60 },
    readinessProbe: { httpGet: { path: "/v2/health/ready", port: "model" }, periodSeconds: 5, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: "/v2/health/live", port: "model" }, periodSeconds: 10, failureThreshold: 3 },
    securityContext: restrictedContainerSecurity,
    volumeMounts: [{ name: "tmp", mountPath: SCRATCH_DIR }, ...(store ? [{ ...store.mount, readOnly: true }] : [])],
  };
  const window = md.spec.monitoring.window;
  const sidecar: V1Container = {
    name: "sidecar",
    image,
    imagePullPolicy: serving.imagePullPolicy,
    args: [
      "sidecar",
      "--upstream",
      serverUrl,
      "--store",
      md.spec.model.storageUri,
      "--model",
      md.spec.model.name,
      ...(version ? ["--version", version] : []),
      "--host",
      "$(POD_IP)",
      "--port",
      String(serving.port),
      ...(logToStore ? ["--log-to-store"] : ["--data-dir", REQUEST_LOG_DIR]),
      "--pvc-mount-root",
      PVC_MOUNT_ROOT,
      // 0 turns a bound off in the sidecar; the schema requires at least one of the two.
      "--window-size",
      String(window.size ?? 0),
      "--window-duration",
      `${window.duration ? goDurationMs(window.duration) : 0}ms`,
    ],
    env: podEnv,
    ports: [{ name: "http", containerPort: serving.port, protocol: "TCP" }],
    readinessProbe: { httpGet: { path: "/v1/sidecar/ready", port: "http" }, periodSeconds: 5, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: "/v1/sidecar/live", port: "http" }, periodSeconds: 10, failureThreshold: 3 },
    securityContext: restrictedContainerSecurity,
    volumeMounts: [
      { name: "monitoring-config", mountPath: MONITORING_CONFIG_DIR, readOnly: true },
      ...(logToStore ? [] : [{ name: "request-log", mountPath: REQUEST_LOG_DIR }]),
      { name: "tmp", mountPath: SCRATCH_DIR },
      // The sidecar reads the served version's metadata from the store, and writes its request log there.
      ...(store ? [store.mount] : []),
    ],
  };
  const delegated = md.metadata.annotations?.[ANNOTATION_REPLICAS_MANAGED_BY] === "external";
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadataFor(md, names.deployment),
    spec: {
      // Omitted when scale is delegated: SSA then leaves the field to whoever owns it.
      ...(delegated ? {} : { replicas: serving.replicas }),
      revisionHistoryLimit: 3,
      selector: { matchLabels: selectorLabels(name) },
      // Never drop below the desired number of serving pods during a roll: a model is slow to load.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels: commonLabels(md), annotations: { [ANNOTATION_CONFIG_HASH]: configHash } },
        spec: {
          serviceAccountName: serving.serviceAccountName,
          // Serving pods never call the Kubernetes API.
          automountServiceAccountToken: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: SERVING_UID,
            runAsGroup: SERVING_UID,
            fsGroup: SERVING_UID,
            seccompProfile: { type: "RuntimeDefault" },
          },
          nodeSelector: serving.nodeSelector,
          tolerations: serving.tolerations,
          affinity: serving.affinity,
          containers: [server, sidecar],
          volumes: [
            { name: "monitoring-config", configMap: { name: names.configMap } },
            ...(logToStore ? [] : [{ name: "request-log", emptyDir: {} }]),
            { name: "tmp", emptyDir: {} },
            ...(store ? [store.volume] : []),
          ],
        },
      },
    },
  };
}

/** Drops undefined fields, so the applied object only names the fields we mean to own. */
export function pruneUndefined<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The three objects, pruned and stamped with the hash of their content. */
export function desiredServingObjects(md: ResolvedModelDeployment, opts: DesiredDeploymentOptions) {
  const stamp = <T extends { metadata?: { annotations?: Record<string, string> } }>(obj: T): T => {
    const clean = pruneUndefined(obj);
    clean.metadata = { ...clean.metadata, annotations: { ...clean.metadata?.annotations, [ANNOTATION_APPLIED_HASH]: contentHash(clean) } };
    return clean;
  };
  return {
    configMap: stamp(desiredConfigMap(md)),
    service: stamp(desiredService(md)),
    deployment: stamp(desiredDeployment(md, opts)),
  };
}
