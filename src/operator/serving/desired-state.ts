// What should exist for a ModelDeployment's serving: pure functions from the spec to the Deployment,
// Service and ConfigMap the operator applies. No I/O, so every rule here is unit-tested without a cluster.
import { createHash } from "node:crypto";
import type {
  V1ConfigMap,
  V1Container,
  V1ResourceRequirements,
  V1Deployment,
  V1EnvVar,
  V1NetworkPolicy,
  V1PodTemplateSpec,
  V1Service,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import {
  API_VERSION,
  KIND,
  SERVER_HEALTH_PORT,
  SIDECAR_MONITORING_PORT,
  defaultAccuracyMetric,
  defaultDriftThreshold,
  parseDurationMs,
  parseStorageUri,
  SIDECAR_PATHS,
  type ResolvedModelDeployment,
  type StorageLocation,
} from "../../api/index.js";
import { DEFAULT_LOG_MAX_BYTES, DEFAULT_LOG_SEGMENT_BYTES } from "../../vocabulary/request-log.js";
import { STORE_ENV_NAMES, storeEnv, storeVolume } from "../store-env.js";

export const LABEL_NAME = "app.kubernetes.io/name";
export const LABEL_INSTANCE = "app.kubernetes.io/instance";
export const LABEL_COMPONENT = "app.kubernetes.io/component";
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by";
export const LABEL_MODEL_DEPLOYMENT = "ballast.dev/model-deployment";
export const LABEL_MODEL = "ballast.dev/model";
export const MANAGED_BY = "ballast-operator";
/** For a Prometheus without prometheus-operator (the kubernetes-pods job convention): scrape the sidecar's monitoring port. */
export const PROMETHEUS_SCRAPE_ANNOTATIONS = {
  "prometheus.io/scrape": "true",
  "prometheus.io/port": String(SIDECAR_MONITORING_PORT),
  "prometheus.io/path": SIDECAR_PATHS.metrics,
} as const;
/** Pod template annotation: changes when the monitoring config changes, so the pods roll. */
export const ANNOTATION_CONFIG_HASH = "ballast.dev/monitoring-config-hash";
/** On a ModelDeployment: "external" leaves Deployment replicas to someone else (an HPA on the Deployment). */
export const ANNOTATION_REPLICAS_MANAGED_BY = "ballast.dev/replicas-managed-by";
/** On owned objects: hash of what we applied, so an unchanged object is not re-applied on every event. */
export const ANNOTATION_APPLIED_HASH = "ballast.dev/applied-hash";

export { SERVER_HEALTH_PORT, SIDECAR_MONITORING_PORT };
/**
 * The model server's API is a Unix socket in an emptyDir only the pod's two containers mount: nothing else, on
 * the pod network or the node (the local cluster's pods share the host network), can reach the server past the sidecar.
 */
export const SERVER_SOCKET_DIR = "/run/ballast/server";
export const SERVER_SOCKET = `${SERVER_SOCKET_DIR}/model.sock`;
/** Where the feedback token Secret is mounted, in the sidecar only. */
export const FEEDBACK_TOKEN_DIR = "/etc/ballast-feedback";
export const FEEDBACK_TOKEN_FILE = "token";
/**
 * Shutdown order on SIGTERM (both containers get it at once): the sidecar stays up, not ready, proxying for
 * SIDECAR_SHUTDOWN_DELAY_S while the endpoints drop the pod, then drains for up to DRAIN_TIMEOUT_S; the server
 * serves on for SERVER_SHUTDOWN_DELAY_S (past the sidecar's delay and drain), then drains. All within the grace period.
 */
export const SIDECAR_SHUTDOWN_DELAY_S = 5;
export const DRAIN_TIMEOUT_S = 10;
export const SERVER_SHUTDOWN_DELAY_S = SIDECAR_SHUTDOWN_DELAY_S + DRAIN_TIMEOUT_S;
export const TERMINATION_GRACE_PERIOD_S = SERVER_SHUTDOWN_DELAY_S + DRAIN_TIMEOUT_S + 5;
/** The operator's pods, as deploy/ and the chart label them: the only ones the NetworkPolicy admits to the monitoring port. */
export const OPERATOR_POD_LABELS = { "app.kubernetes.io/name": "ballast", "app.kubernetes.io/component": "operator" } as const;
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
  networkPolicy: string;
}

/** Deterministic names derived from the owner: a restart or a second operator never makes a twin. */
export function servingNames(mdName: string): ServingNames {
  return { deployment: `${mdName}-serving`, service: mdName, configMap: `${mdName}-monitoring`, networkPolicy: `${mdName}-serving` };
}

export function selectorLabels(mdName: string, component: "serving" | "shadow" = "serving"): Record<string, string> {
  return { [LABEL_MODEL_DEPLOYMENT]: mdName, [LABEL_COMPONENT]: component };
}

/** Label selector string of the serving pods (status.selector, for the scale subresource and HPAs). */
export function selectorString(mdName: string): string {
  return Object.entries(selectorLabels(mdName))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

export function commonLabels(md: ResolvedModelDeployment, component: "serving" | "shadow" = "serving"): Record<string, string> {
  const name = md.metadata.name!;
  return {
    [LABEL_NAME]: "ballast",
    [LABEL_INSTANCE]: name,
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_MODEL]: md.spec.model.name,
    ...selectorLabels(name, component),
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

export function metadataFor(md: ResolvedModelDeployment, name: string, component: "serving" | "shadow" = "serving") {
  return { name, namespace: md.metadata.namespace!, labels: commonLabels(md, component), ownerReferences: [ownerReference(md)] };
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

/**
 * Who may connect to the serving pods: anyone to the serving port (the Service's), the operator's pods alone to
 * the sidecar's monitoring port (the summary and metrics), nobody to anything else. With the operator's namespace
 * unknown (it runs outside the cluster), the monitoring port admits nobody. Enforced by the cluster's network
 * plugin, where it has one that implements NetworkPolicy.
 */
export function desiredNetworkPolicy(md: ResolvedModelDeployment, options: { operatorNamespace?: string }): V1NetworkPolicy {
  const name = md.metadata.name!;
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: metadataFor(md, servingNames(name).networkPolicy),
    spec: {
      podSelector: { matchLabels: selectorLabels(name) },
      policyTypes: ["Ingress"],
      ingress: [{ ports: [{ port: md.spec.serving.port, protocol: "TCP" }] }, ...monitoringIngress(options)],
    },
  };
}

/** The NetworkPolicy ingress rule that admits the operator's pods alone to the sidecar's monitoring port (none when its namespace is unknown). */
export function monitoringIngress(options: { operatorNamespace?: string }) {
  return options.operatorNamespace
    ? [
        {
          from: [
            {
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": options.operatorNamespace } },
              podSelector: { matchLabels: { ...OPERATOR_POD_LABELS } },
            },
          ],
          ports: [{ port: SIDECAR_MONITORING_PORT, protocol: "TCP" }],
        },
      ]
    : [];
}

/** The serving pod's model server container (the sidecar is the other). */
export const SERVER_CONTAINER = "server";

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
export function modelVolume(location: StorageLocation, options: { readOnly: boolean } = { readOnly: true }): ModelVolume | undefined {
  if (location.scheme !== "pvc") return undefined;
  return {
    volume: { name: "model-store", persistentVolumeClaim: { claimName: location.claimName, readOnly: options.readOnly } },
    mount: { name: "model-store", mountPath: `${PVC_MOUNT_ROOT}/${location.claimName}`, readOnly: options.readOnly },
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

/** `--shutdown-delay` and `--drain-timeout` of a serving container (see SERVER_SHUTDOWN_DELAY_S for the order). */
function shutdownArgs(delayS: number): string[] {
  return ["--shutdown-delay", `${delayS}s`, "--drain-timeout", `${DRAIN_TIMEOUT_S}s`];
}

export interface DesiredDeploymentOptions {
  /** The Ballast image when spec.serving.image is unset (the operator's own version). */
  defaultImage: string;
  /** The operator's own namespace (its pods alone may scrape the sidecars); undefined when it runs outside the cluster. */
  operatorNamespace?: string;
}

/** Which pods a template is for: the serving pods, or the shadow pods of a candidate. */
export interface PodTemplateVariant {
  component: "serving" | "shadow";
  /** The version both containers pin; undefined lets `ballast serve` pick the newest non-candidate version. */
  version: string | undefined;
}

export function desiredDeployment(md: ResolvedModelDeployment, options: DesiredDeploymentOptions): V1Deployment {
  const name = md.metadata.name!;
  const serving = md.spec.serving;
  const delegated = md.metadata.annotations?.[ANNOTATION_REPLICAS_MANAGED_BY] === "external";
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadataFor(md, servingNames(name).deployment),
    spec: {
      // Omitted when scale is delegated: SSA then leaves the field to whoever owns it.
      ...(delegated ? {} : { replicas: serving.replicas }),
      revisionHistoryLimit: 3,
      selector: { matchLabels: selectorLabels(name) },
      // Never drop below the desired number of serving pods during a roll: a model is slow to load.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: podTemplate(md, options, { component: "serving", version: pinnedVersion(md) }),
    },
  };
}

/** The pod template of the serving pods (server + sidecar), also what a shadow candidate runs in. */
export function podTemplate(md: ResolvedModelDeployment, options: DesiredDeploymentOptions, variant: PodTemplateVariant): V1PodTemplateSpec {
  const names = servingNames(md.metadata.name!);
  const serving = md.spec.serving;
  const image = serving.image ?? options.defaultImage;
  const version = variant.version;
  const location = parseStorageUri(md.spec.model.storageUri, "spec.model.storageUri");
  // pvc:// and file:// stores are writable: the sidecar keeps its request log there, where it outlives the pod
  // and the retraining Job reads it (<store>/<model>/_log/<pod>/). http(s):// stores leave it on an emptyDir.
  // A shadow's log stays on an emptyDir: it holds mirrored copies of requests the serving pods already logged,
  // which retraining must not read twice.
  const logToStore = (location.scheme === "pvc" || location.scheme === "file") && variant.component === "serving";
  // An s3:// store cannot be appended to: the sidecar logs to the emptyDir and ships each sealed segment there.
  const shipLog = location.scheme === "s3" && variant.component === "serving";
  // A read-only volume would force every mount read-only: the claim is writable, the server's mount is not.
  const store = modelVolume(location, { readOnly: !logToStore });
  const identity = storeVolume(md);
  const configHash = contentHash(desiredConfigMap(md).data);
  const userEnv = (serving.env ?? []) as V1EnvVar[];
  // The store's endpoint and credentials (s3://) win over a user's variable of the same name, like the pod's own.
  const ownEnv = [...podEnv, ...storeEnv(md)];
  const env = [...ownEnv, ...userEnv.filter((e) => !ownEnv.some((d) => d.name === e.name))];
  // The sidecar reads the store too: it gets the user's own store settings, if any, and nothing else of spec.serving.env.
  const sidecarEnv = env.filter((e) => ownEnv.includes(e) || STORE_ENV_NAMES.has(e.name));
  const feedbackAuth = md.spec.monitoring.feedbackAuth;

  const serverArgs = [
    "serve",
    "--store",
    md.spec.model.storageUri,
    "--model",
    md.spec.model.name,
    ...(version ? ["--version", version] : []),
    "--socket",
    SERVER_SOCKET,
    "--host",
    "$(POD_IP)",
    "--health-port",
    String(SERVER_HEALTH_PORT),
    ...shutdownArgs(SERVER_SHUTDOWN_DELAY_S),
    "--pvc-mount-root",
    PVC_MOUNT_ROOT,
  ];
  const server: V1Container = {
    name: SERVER_CONTAINER,
    image,
    imagePullPolicy: serving.imagePullPolicy,
    args: serverArgs,
    env,
    // Probes only: the API is on the socket.
    ports: [{ name: "health", containerPort: SERVER_HEALTH_PORT, protocol: "TCP" }],
    resources: serving.resources as V1ResourceRequirements | undefined,
    startupProbe: { httpGet: { path: "/v2/health/live", port: "health" }, periodSeconds: 2, failureThreshold: 60 },
    readinessProbe: { httpGet: { path: "/v2/health/ready", port: "health" }, periodSeconds: 5, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: "/v2/health/live", port: "health" }, periodSeconds: 10, failureThreshold: 3 },
    securityContext: restrictedContainerSecurity,
    // A start failure's last words (`ballast serve: <why>`) reach the pod status, and so the ModelDeployment's.
    terminationMessagePolicy: "FallbackToLogsOnError",
    volumeMounts: [
      { name: "server-socket", mountPath: SERVER_SOCKET_DIR },
      { name: "tmp", mountPath: SCRATCH_DIR },
      ...(store ? [{ ...store.mount, readOnly: true }] : []),
      ...(identity ? [identity.mount] : []),
    ],
  };
  const window = md.spec.monitoring.window;
  const sidecar: V1Container = {
    name: "sidecar",
    image,
    imagePullPolicy: serving.imagePullPolicy,
    args: [
      "sidecar",
      "--upstream",
      `unix:${SERVER_SOCKET}`,
      "--store",
      md.spec.model.storageUri,
      "--model",
      md.spec.model.name,
      // Its metrics name the ModelDeployment (and, from POD_NAMESPACE, its namespace), not the pod.
      "--modeldeployment",
      md.metadata.name!,
      ...(version ? ["--version", version] : []),
      "--host",
      "$(POD_IP)",
      "--port",
      String(serving.port),
      "--monitoring-port",
      String(SIDECAR_MONITORING_PORT),
      ...shutdownArgs(SIDECAR_SHUTDOWN_DELAY_S),
      ...(feedbackAuth ? ["--feedback-token-file", `${FEEDBACK_TOKEN_DIR}/${FEEDBACK_TOKEN_FILE}`] : []),
      ...(logToStore ? ["--log-to-store"] : ["--data-dir", REQUEST_LOG_DIR]),
      ...(shipLog ? ["--ship-log", ...(md.spec.model.s3?.logSpoolBytes ? ["--log-max-bytes", String(md.spec.model.s3.logSpoolBytes)] : [])] : []),
      "--pvc-mount-root",
      PVC_MOUNT_ROOT,
      // 0 turns a bound off in the sidecar; the schema requires at least one of the two.
      // The spec's drift method, threshold mode, correction, features and reference: without it the sidecar judges
      // drift with its defaults whatever the spec says.
      "--monitoring-config",
      `${MONITORING_CONFIG_DIR}/${MONITORING_CONFIG_KEY}`,
      "--window-size",
      String(window.size ?? 0),
      "--window-duration",
      `${window.duration ? parseDurationMs(window.duration) : 0}ms`,
    ],
    env: sidecarEnv,
    ports: [
      { name: "http", containerPort: serving.port, protocol: "TCP" },
      { name: "monitoring", containerPort: SIDECAR_MONITORING_PORT, protocol: "TCP" },
    ],
    readinessProbe: { httpGet: { path: SIDECAR_PATHS.ready, port: "http" }, periodSeconds: 5, failureThreshold: 3 },
    livenessProbe: { httpGet: { path: SIDECAR_PATHS.live, port: "http" }, periodSeconds: 10, failureThreshold: 3 },
    securityContext: restrictedContainerSecurity,
    volumeMounts: [
      { name: "monitoring-config", mountPath: MONITORING_CONFIG_DIR, readOnly: true },
      { name: "server-socket", mountPath: SERVER_SOCKET_DIR },
      ...(feedbackAuth ? [{ name: "feedback-token", mountPath: FEEDBACK_TOKEN_DIR, readOnly: true }] : []),
      ...(logToStore ? [] : [{ name: "request-log", mountPath: REQUEST_LOG_DIR }]),
      { name: "tmp", mountPath: SCRATCH_DIR },
      // The sidecar reads the served version's metadata from the store, and writes its request log there.
      ...(store ? [store.mount] : []),
      ...(identity ? [identity.mount] : []),
    ],
  };
  return {
    metadata: { labels: commonLabels(md, variant.component), annotations: { [ANNOTATION_CONFIG_HASH]: configHash, ...PROMETHEUS_SCRAPE_ANNOTATIONS } },
    spec: {
      serviceAccountName: serving.serviceAccountName,
      terminationGracePeriodSeconds: TERMINATION_GRACE_PERIOD_S,
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
        { name: "server-socket", emptyDir: {} },
        // Readable by the pod's group (fsGroup) only; the sidecar reads it once at start.
        ...(feedbackAuth
          ? [
              {
                name: "feedback-token",
                secret: {
                  secretName: feedbackAuth.secretRef.name,
                  items: [{ key: feedbackAuth.secretRef.key, path: FEEDBACK_TOKEN_FILE }],
                  defaultMode: 0o440,
                },
              },
            ]
          : []),
        ...(logToStore ? [] : [{ name: "request-log", emptyDir: { sizeLimit: requestLogSizeLimit(shipLog ? md.spec.model.s3?.logSpoolBytes : undefined) } }]),
        { name: "tmp", emptyDir: {} },
        ...(store ? [store.volume] : []),
        ...(identity ? [identity.volume] : []),
      ],
    },
  };
}

/**
 * The request log's emptyDir limit: the sidecar's own bound plus the open segment and one being sealed, so the
 * sidecar's bound (delete old segments, or refuse feedback while an unshipped spool is full) always acts first and
 * the kubelet's eviction at the limit is only a backstop against a runaway log filling the node.
 */
export function requestLogSizeLimit(maxBytes = DEFAULT_LOG_MAX_BYTES): string {
  return String(maxBytes + 2 * DEFAULT_LOG_SEGMENT_BYTES);
}

/** Drops undefined fields, so the applied object only names the fields we mean to own. */
export function pruneUndefined<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** `obj` pruned and stamped with the hash of its content (ANNOTATION_APPLIED_HASH). */
export function stampAppliedHash<T extends { metadata?: { annotations?: Record<string, string> } }>(obj: T): T {
  const clean = pruneUndefined(obj);
  clean.metadata = { ...clean.metadata, annotations: { ...clean.metadata?.annotations, [ANNOTATION_APPLIED_HASH]: contentHash(clean) } };
  return clean;
}

/** The four objects, pruned and stamped with the hash of their content. */
export function desiredServingObjects(md: ResolvedModelDeployment, options: DesiredDeploymentOptions) {
  return {
    configMap: stampAppliedHash(desiredConfigMap(md)),
    service: stampAppliedHash(desiredService(md)),
    deployment: stampAppliedHash(desiredDeployment(md, options)),
    networkPolicy: stampAppliedHash(desiredNetworkPolicy(md, options)),
  };
}
