// ModelDeployment ballast.dev/v1alpha1: the one source of the CRD schema and the TypeScript types.
// Descriptions are what `kubectl explain modeldeployment.spec...` prints; keep them user-facing.
import { Type, type Static } from "@sinclair/typebox";
import type { V1Affinity, V1EnvVarSource, V1ObjectMeta } from "@kubernetes/client-node";
import { durationString, opaqueObject, positiveNumber, resourceList, stringEnum, stringMap, withDefault, type CelRule, type Resolved } from "./schema-kit.js";
import { CORRECTIONS, DRIFT_METHOD_CHOICES, DRIFT_METHODS, THRESHOLD_MODES } from "../vocabulary/drift.js";

export const GROUP = "ballast.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = "ModelDeployment";
export const LIST_KIND = "ModelDeploymentList";
export const PLURAL = "modeldeployments";
export const SINGULAR = "modeldeployment";
export const SHORT_NAMES = ["md", "mdep"] as const;
export const CATEGORIES = ["ballast", "ml"] as const;
export const CRD_NAME = `${PLURAL}.${GROUP}`;
/** Longest metadata.name accepted, so derived names ("<name>-retrain-<hash>") stay within 63 characters. */
export const MAX_NAME_LENGTH = 45;
/** Entries kept in status.history; the oldest are dropped first. */
export const MAX_HISTORY = 20;

export const STORAGE_URI_SCHEMES = ["pvc", "file", "http", "https", "s3"] as const;
// One path segment other than "..", in RE2 and ECMAScript alike ("[.]": a CEL string literal has no "\." escape).
const pathSegment = "([^/.][^/]*|[.][^/.][^/]*|[.][.][^/]+|[.])";
/** An S3 bucket name (3-63 lowercase letters, digits, '.' and '-', alphanumeric at both ends). */
export const S3_BUCKET_REGEX = "[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]";
// pvc://<claim>[/<path>] | file:///<absolute path> | http(s)://<host>[/<path>]. No ".." segment in a pvc:// or
// file:// path: joined onto the claim's mount root it would resolve outside it.
const localOrHttpUri = `pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/${pathSegment}?)*|file:///+${pathSegment}(/${pathSegment}?)*|https?://[^/ ]+(/.*)?`;
// The model store may also be s3://<bucket>[/<prefix>]; no ".." segment there either (keys are literal, so
// "a/../b" would name another prefix than the one it reads as).
export const MODEL_STORE_URI_REGEX = `^(${localOrHttpUri}|s3://${S3_BUCKET_REGEX}(/${pathSegment}?)*)$`;
export const MODEL_STORE_URI_MESSAGE = "must be pvc://<claim>/<path>, file:///<absolute path>, http(s)://<host>/<path> or s3://<bucket>/<prefix>";

const dnsLabelPattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
const dnsSubdomainPattern = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/** A model or version directory name: the CRD's version fields and the model store check the same pattern. */
export const VERSION_NAME_REGEX = "^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$";
const versionPattern = VERSION_NAME_REGEX;
const featureNamePattern = "^[A-Za-z_][A-Za-z0-9_.-]{0,127}$";

function storageUri(description: string, pattern = MODEL_STORE_URI_REGEX, message = MODEL_STORE_URI_MESSAGE) {
  return Type.String({
    minLength: 1,
    maxLength: 2048,
    description,
    "x-kubernetes-validations": [
      {
        rule: `self.matches('${pattern}')`,
        message,
        reason: "FieldValueInvalid",
      },
    ] satisfies CelRule[],
  });
}

function containerImage(description: string) {
  return Type.Optional(Type.String({ minLength: 1, maxLength: 512, pattern: "^\\S+$", description }));
}

const imagePullPolicy = Type.Optional(
  stringEnum(["Always", "IfNotPresent", "Never"] as const, "When the kubelet pulls the image; Kubernetes defaults apply when unset."),
);

// ---------------------------------------------------------------- pod placement (serving and retraining)

export const TolerationSchema = Type.Object(
  {
    key: Type.Optional(Type.String({ maxLength: 316, description: "Taint key the toleration applies to; empty with operator Exists matches every taint." })),
    operator: withDefault(stringEnum(["Exists", "Equal"] as const, "Exists matches any value, Equal matches `value`."), "Equal"),
    value: Type.Optional(Type.String({ maxLength: 256, description: "Taint value to match when operator is Equal." })),
    effect: Type.Optional(stringEnum(["NoSchedule", "PreferNoSchedule", "NoExecute"] as const, "Taint effect to match; empty matches every effect.")),
    tolerationSeconds: Type.Optional(Type.Integer({ format: "int64", minimum: 0, description: "How long a NoExecute taint is tolerated before eviction." })),
  },
  {
    description: "A core/v1 Toleration: lets the pod schedule onto nodes with a matching taint (e.g. the GPU node).",
    "x-kubernetes-validations": [
      {
        rule: "self.operator != 'Exists' || !has(self.value) || self.value == ''",
        message: "value must be empty when operator is Exists",
        fieldPath: ".value",
        reason: "FieldValueInvalid",
      },
    ] satisfies CelRule[],
  },
);

export const ResourceRequirementsSchema = Type.Object(
  {
    limits: Type.Optional(resourceList('Maximum compute resources, e.g. cpu: "2", memory: 4Gi, nvidia.com/gpu: 1.')),
    requests: Type.Optional(resourceList("Compute resources the scheduler reserves, e.g. cpu: 500m, memory: 1Gi.")),
  },
  { description: "A core/v1 ResourceRequirements (limits and requests)." },
);

export const EnvVarSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 256, pattern: "^[^=]+$", description: "Environment variable name." }),
    value: Type.Optional(Type.String({ maxLength: 32768, description: "Literal value." })),
    valueFrom: Type.Optional(
      opaqueObject<V1EnvVarSource>(
        "A core/v1 EnvVarSource (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef); validated when the operator applies the pod.",
      ),
    ),
  },
  { description: "A core/v1 EnvVar." },
);

// A GPU pod lands on the tainted GPU node only with a toleration or a selector; without one it pends forever.
const gpuPlacementRule: CelRule = {
  rule:
    "!(has(self.resources) && ((has(self.resources.limits) && 'nvidia.com/gpu' in self.resources.limits) || " +
    "(has(self.resources.requests) && 'nvidia.com/gpu' in self.resources.requests))) || " +
    "(has(self.nodeSelector) && size(self.nodeSelector) > 0) || (has(self.tolerations) && size(self.tolerations) > 0) || has(self.affinity)",
  message: "resources ask for nvidia.com/gpu: set tolerations (for the GPU node's taint), nodeSelector or affinity so the pod can be scheduled on a GPU node",
  fieldPath: ".tolerations",
  reason: "FieldValueRequired",
};

function podPlacementProperties(what: string) {
  return {
    resources: Type.Optional(
      Type.Object(ResourceRequirementsSchema.properties, {
        description: `Compute resources of the ${what} container (a core/v1 ResourceRequirements).`,
      }),
    ),
    env: Type.Optional(
      Type.Array(EnvVarSchema, {
        maxItems: 64,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        description: `Extra environment variables for the ${what} container.`,
      }),
    ),
    nodeSelector: Type.Optional(stringMap(`Node labels the ${what} pod must match.`, 32)),
    tolerations: Type.Optional(
      Type.Array(TolerationSchema, {
        maxItems: 16,
        "x-kubernetes-list-type": "atomic",
        description: `Tolerations of the ${what} pod.`,
      }),
    ),
    affinity: Type.Optional(
      opaqueObject<V1Affinity>(`A core/v1 Affinity for the ${what} pod, stored as given and validated when the operator applies the pod.`),
    ),
  };
}

// ---------------------------------------------------------------- spec

export const S3StoreSchema = Type.Object(
  {
    endpoint: Type.Optional(
      Type.String({
        maxLength: 2048,
        pattern: "^https?://[^/ ?#]+/?$",
        description:
          "An S3-compatible endpoint, scheme and host only, e.g. https://minio.storage.svc:9000. Unset: AWS S3 in region (https://s3.<region>.amazonaws.com).",
      }),
    ),
    region: Type.Optional(
      Type.String({ minLength: 1, maxLength: 64, pattern: "^[a-z0-9-]+$", description: "Region the requests are signed for; unset: us-east-1." }),
    ),
    forcePathStyle: Type.Optional(
      Type.Boolean({
        description:
          "Address the bucket in the path (<endpoint>/<bucket>/<key>) instead of the host name (<bucket>.<endpoint>); most S3-compatible servers need true.",
      }),
    ),
    credentialsSecretRef: Type.Optional(
      Type.Object(
        {
          name: Type.String({ minLength: 1, maxLength: 253, pattern: dnsSubdomainPattern, description: "Secret in the ModelDeployment's namespace." }),
        },
        {
          description:
            "A Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and optionally AWS_SESSION_TOKEN), set as environment variables of the serving and retraining containers only. Unset: the pods' own environment (spec.serving.env, spec.retraining.env).",
        },
      ),
    ),
    webIdentity: Type.Optional(
      Type.Object(
        {
          roleArn: Type.String({
            minLength: 1,
            maxLength: 2048,
            pattern: "^arn:[a-z-]+:iam::[0-9]*:role/[\\w+=,.@/-]+$",
            description: "The role the pods assume with STS AssumeRoleWithWebIdentity, e.g. arn:aws:iam::123456789012:role/ballast-models.",
          }),
          audience: withDefault(
            Type.String({
              minLength: 1,
              maxLength: 253,
              description: "Audience of the projected ServiceAccount token: what the role's OIDC provider expects.",
            }),
            "sts.amazonaws.com",
          ),
          stsEndpoint: Type.Optional(
            Type.String({
              maxLength: 2048,
              pattern: "^https?://[^/ ?#]+/?$",
              description: "STS of an S3-compatible server (scheme and host). Unset: AWS STS in region (https://sts.<region>.amazonaws.com).",
            }),
          ),
        },
        {
          description:
            "Temporary credentials from a role instead of keys: each pod's ServiceAccount token (projected, audience above, rotated by the kubelet) is exchanged with STS. The role's trust policy names the cluster's service account issuer and the pods' ServiceAccount (spec.serving.serviceAccountName, spec.retraining.serviceAccountName). On EKS, IRSA's webhook does the same from a ServiceAccount annotation; leave this unset then.",
        },
      ),
    ),
    logSpoolBytes: Type.Optional(
      Type.Integer({
        minimum: 65536,
        maximum: 1099511627776,
        description:
          "Bound on the request log bytes a serving pod holds on its emptyDir before they are shipped to the bucket (the sidecar's --log-max-bytes). When an unreachable store fills it, the sidecar refuses feedback (503) rather than lose it and the operator records a LogSpoolFull Warning. Unset: 1 GiB.",
      }),
    ),
  },
  {
    description: "How the pods reach an s3:// store: the endpoint, region, addressing style and credentials.",
    "x-kubernetes-validations": [
      {
        rule: "!(has(self.credentialsSecretRef) && has(self.webIdentity))",
        message: "set credentialsSecretRef (keys) or webIdentity (a role), not both",
        reason: "FieldValueForbidden",
      },
    ] satisfies CelRule[],
  },
);

export const ModelSpecSchema = Type.Object(
  {
    name: Type.String({
      minLength: 1,
      maxLength: 63,
      pattern: dnsLabelPattern,
      description: "Model name: the directory under the store root that holds its versions (<root>/<name>/<version>/).",
      "x-kubernetes-validations": [
        { rule: "self == oldSelf", message: "model.name is immutable: create a new ModelDeployment for another model" },
      ] satisfies CelRule[],
    }),
    storageUri: storageUri(
      "Root of the model store: pvc://<claim>/<path> (mounted into the pods), file:///<path> (a local directory), http(s)://<host>/<path> (read-only) or s3://<bucket>/<prefix> (S3 or an S3-compatible server; see s3).",
    ),
    format: withDefault(
      stringEnum(["tfjs-layers"] as const, "Format of a version directory: a TensorFlow.js layers model (model.json + weights) and metadata.json."),
      "tfjs-layers",
    ),
    version: Type.Optional(
      Type.String({
        pattern: versionPattern,
        maxLength: 63,
        description:
          "Pinned version to serve. Unset: the newest version in the store, then whatever promotion chooses. Set: automatic promotion never replaces it (candidates are still trained and reported).",
      }),
    ),
    s3: Type.Optional(S3StoreSchema),
  },
  {
    description: "The model to serve and where its versions are stored.",
  },
);

/**
 * Ports the serving pods use inside themselves: the model server's health port (probes only) and the sidecar's
 * monitoring port (summary and metrics, for the operator). spec.serving.port may be neither.
 */
export const SERVER_HEALTH_PORT = 9000;
export const SIDECAR_MONITORING_PORT = 9090;

export const ServingSpecSchema = Type.Object(
  {
    replicas: withDefault(
      Type.Integer({
        format: "int32",
        minimum: 0,
        maximum: 100,
        description: "Serving pods; `kubectl scale` and an HPA change it through the scale subresource.",
      }),
      1,
    ),
    image: containerImage("Image with the `ballast` CLI for the model server and sidecar containers. Defaults to the operator's own image."),
    imagePullPolicy,
    port: withDefault(
      Type.Integer({
        format: "int32",
        minimum: 1024,
        maximum: 65535,
        description: `Port of the Service and the sidecar (Open Inference Protocol v2 REST, /v2/...; POST /v1/feedback). Not ${SERVER_HEALTH_PORT} or ${SIDECAR_MONITORING_PORT}: the pod uses those inside.`,
        "x-kubernetes-validations": [
          {
            rule: `self != ${SERVER_HEALTH_PORT} && self != ${SIDECAR_MONITORING_PORT}`,
            message: `serving.port must not be ${SERVER_HEALTH_PORT} (the model server's health port) or ${SIDECAR_MONITORING_PORT} (the sidecar's monitoring port); pick another, e.g. 8080`,
            reason: "FieldValueInvalid",
          },
        ] satisfies CelRule[],
      }),
      8080,
    ),
    serviceAccountName: Type.Optional(
      Type.String({ maxLength: 253, pattern: dnsSubdomainPattern, description: "ServiceAccount of the serving pods; the namespace default when unset." }),
    ),
    ...podPlacementProperties("model server"),
  },
  {
    description: "How the model is served: a Deployment of pods running `ballast serve` behind a `ballast sidecar` that monitors traffic.",
    "x-kubernetes-validations": [gpuPlacementRule],
  },
);

export const FeatureSchema = Type.Object(
  {
    name: Type.String({ pattern: featureNamePattern, maxLength: 128, description: "Input name as it appears in inference requests and training data." }),
    type: stringEnum(["numeric", "categorical"] as const, "numeric: continuous values; categorical: a finite set of labels (strings or codes)."),
    driftMethod: Type.Optional(stringEnum(DRIFT_METHODS, "Drift statistic for this feature only, overriding monitoring.drift.method.")),
  },
  { description: "One model input to profile and check for drift." },
);

export const CLASSIFICATION_METRICS = ["accuracy", "precision", "recall", "f1"] as const;
export const REGRESSION_METRICS = ["mae", "rmse"] as const;

export const MonitoringSpecSchema = Type.Object(
  {
    features: Type.Array(FeatureSchema, {
      minItems: 1,
      maxItems: 256,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
      description: "Inputs the sidecar profiles; names are unique.",
    }),
    labelField: Type.String({
      pattern: featureNamePattern,
      maxLength: 128,
      description: "Name of the ground-truth field in feedback and training data.",
    }),
    task: stringEnum(["classification", "regression"] as const, "classification (predicts a class) or regression (predicts a number)."),
    accuracyMetric: Type.Optional(
      stringEnum(
        [...CLASSIFICATION_METRICS, ...REGRESSION_METRICS] as const,
        "Live quality metric: accuracy, precision, recall or f1 for classification; mae or rmse for regression. Default: accuracy or rmse.",
      ),
    ),
    reference: Type.Optional(
      Type.Object(
        {
          uri: storageUri(
            "Location of a reference profile JSON (as written by `ballast train`): pvc://, file://, http(s):// or s3://<bucket>/<key> (read with spec.model.s3's endpoint and credentials).",
          ),
        },
        { description: "Reference profile drift is measured against. Default: the profile in the serving version's metadata.json." },
      ),
    ),
    window: withDefault(
      Type.Object(
        {
          size: Type.Optional(Type.Integer({ format: "int32", minimum: 10, maximum: 1000000, description: "Close a window after this many requests." })),
          duration: Type.Optional(durationString("Close a window after this much time, e.g. 5m.")),
        },
        {
          description: "A monitoring window closes when either bound is reached.",
          "x-kubernetes-validations": [
            { rule: "has(self.size) || has(self.duration)", message: "window needs size, duration or both", reason: "FieldValueRequired" },
          ] satisfies CelRule[],
        },
      ),
      { size: 1000 },
    ),
    drift: withDefault(
      Type.Object(
        {
          method: withDefault(
            stringEnum(
              DRIFT_METHOD_CHOICES,
              "Per-feature drift statistic. auto: KS or chi-squared for small references, Wasserstein or Jensen-Shannon for large ones (Evidently's rule).",
            ),
            "auto",
          ),
          thresholdMode: withDefault(
            stringEnum(
              THRESHOLD_MODES,
              "calibrated: a feature drifts when its statistic exceeds the 99% quantile of that statistic between no-drift samples of the reference at the window's size (computed by `ballast train` and stored with the reference profile), so sampling noise, which grows with a feature's cardinality and shrinks with the window, is not read as drift. fixed: Evidently's constant thresholds (threshold below).",
            ),
            "calibrated",
          ),
          correction: withDefault(
            stringEnum(
              CORRECTIONS,
              "Multiple-testing correction across the features tested with p-values (ks, chisquare) under thresholdMode fixed, so wide inputs do not flag drift by chance.",
            ),
            "none",
          ),
          threshold: Type.Optional(
            positiveNumber(
              "Fixed threshold (thresholdMode fixed only): a feature drifts when the statistic crosses this: a p-value (ks, chisquare: drift if p < threshold) or a distance (psi, jensenshannon, wasserstein: drift if ≥ threshold). Default: 0.05 for p-values, 0.1 for distances.",
              { maximum: 100 },
            ),
          ),
          multivariate: withDefault(
            Type.Boolean({
              description:
                "Also judge the inputs together: a window whose mean PCA reconstruction error (against the components holding ~65% of the training rows' variance) leaves the training windows' mean ± 3 std is drift, where policy.triggerOn lets drift decide. Catches a change in how features move together that no single feature shows. Needs a version trained with a multivariate reference (two or more features).",
            }),
            false,
          ),
        },
        {
          description: "How features are judged drifted: each on its own, and (multivariate) all together.",
          "x-kubernetes-validations": [
            {
              rule: "!has(self.threshold) || !(self.method in ['ks', 'chisquare', 'jensenshannon']) || self.threshold <= 1.0",
              message: "threshold must be at most 1 for ks and chisquare (a p-value) and jensenshannon (a distance in [0, 1])",
              fieldPath: ".threshold",
              reason: "FieldValueInvalid",
            },
            {
              rule: "!has(self.threshold) || self.method != 'auto'",
              message: "threshold needs an explicit method: auto picks statistics with different scales",
              fieldPath: ".threshold",
              reason: "FieldValueForbidden",
            },
            {
              rule: "!has(self.threshold) || (has(self.thresholdMode) && self.thresholdMode == 'fixed')",
              message: "threshold is a fixed threshold: set thresholdMode: fixed (calibrated thresholds come from the reference profile)",
              fieldPath: ".threshold",
              reason: "FieldValueForbidden",
            },
            {
              // has(): the CRD's default ({}) is checked against these rules before defaults fill it.
              rule: "!has(self.correction) || self.correction == 'none' || (has(self.thresholdMode) && self.thresholdMode == 'fixed')",
              message: "correction adjusts fixed p-value thresholds: set thresholdMode: fixed, or leave correction at none",
              fieldPath: ".correction",
              reason: "FieldValueForbidden",
            },
          ] satisfies CelRule[],
        },
      ),
      {},
    ),
    scrapeInterval: withDefault(durationString("How often the operator reads each sidecar's summary, e.g. 30s."), "30s"),
    feedbackAuth: Type.Optional(
      Type.Object(
        {
          secretRef: Type.Object(
            {
              name: Type.String({ minLength: 1, maxLength: 253, pattern: dnsSubdomainPattern, description: "Secret in the ModelDeployment's namespace." }),
              key: Type.String({ minLength: 1, maxLength: 253, pattern: "^[-._a-zA-Z0-9]+$", description: "Key of the Secret whose value is the token." }),
            },
            { description: "The Secret key holding the token; mounted as a file into the sidecar only (never an environment variable)." },
          ),
        },
        {
          description:
            "Require a bearer token on POST /v1/feedback (`Authorization: Bearer <token>`); without the right one the sidecar answers 401. Unset: anyone who reaches the Service may post feedback. Changing the Secret's value takes effect when the pods restart.",
        },
      ),
    ),
  },
  {
    description: "What the sidecar measures: input profiles and drift against the reference, and live quality from ground-truth feedback.",
    "x-kubernetes-validations": [
      {
        rule: "!self.features.exists(f, f.name == self.labelField)",
        message: "labelField must not also be listed in features",
        fieldPath: ".labelField",
        reason: "FieldValueInvalid",
      },
      {
        rule: "!has(self.accuracyMetric) || (self.task == 'classification' ? self.accuracyMetric in ['accuracy', 'precision', 'recall', 'f1'] : self.accuracyMetric in ['mae', 'rmse'])",
        message: "accuracyMetric must be accuracy, precision, recall or f1 for classification and mae or rmse for regression",
        fieldPath: ".accuracyMetric",
        reason: "FieldValueInvalid",
      },
      {
        rule: "duration(self.scrapeInterval) >= duration('1s')",
        message: "scrapeInterval must be at least 1s",
        fieldPath: ".scrapeInterval",
        reason: "FieldValueInvalid",
      },
    ] satisfies CelRule[],
  },
);

function fraction(description: string) {
  return Type.Number({ minimum: 0, maximum: 1, description });
}

export const PolicySpecSchema = Type.Object(
  {
    paused: withDefault(
      Type.Boolean({ description: "Stop automatic retraining and promotion; serving and monitoring go on. Argo CD shows the resource Suspended." }),
      false,
    ),
    triggerOn: withDefault(
      stringEnum(
        ["auto", "performance", "drift", "any"] as const,
        "What may make a window a violation. auto: a window with at least minLabelledSamples labelled rows is judged on the quality metric (minAccuracy / maxError), stability and robustness, and its drift is reported as the likely cause but does not decide; a window with fewer is judged on the quality metric's label-free estimate (a calibrated classifier's expected accuracy or f1, a regressor's estimated mae or rmse from its error model) and robustness when it has one — unless significantly many rows lie beyond the reference's range and could flip the verdict (docs/monitoring.md) —, else on drift and robustness. performance: only the quality metric (or, with too few labels, its estimate), stability and robustness. drift: only drift and robustness. any: every rule.",
      ),
      "auto",
    ),
    minLabelledSamples: withDefault(
      Type.Integer({
        format: "int32",
        minimum: 1,
        maximum: 10000000,
        description:
          "Labelled rows (with feedback) a window needs before its quality metric decides: with triggerOn auto, fewer means the window is judged on drift; with performance, fewer means the metric is not judged. Keep it at most monitoring.window.size.",
      }),
      50,
    ),
    maxDriftShare: withDefault(
      fraction("Dataset drift when the share of drifted features in a window reaches this (0–1); a violation where triggerOn lets drift decide."),
      0.5,
    ),
    predictionDrift: withDefault(
      Type.Boolean({ description: "Also a violation when the model's predictions drift from the reference, where triggerOn lets drift decide." }),
      false,
    ),
    minAccuracy: Type.Optional(fraction("Classification only: violated when the live accuracy metric falls below this (0–1).")),
    maxError: Type.Optional(Type.Number({ minimum: 0, description: "Regression only: violated when the live error metric (mae or rmse) rises above this." })),
    minStability: withDefault(fraction("Violated when stability = 1 − std(metric)/mean(metric) over recent windows falls below this."), 0.8),
    minRobustness: withDefault(fraction("Violated when robustness = 1 − failed requests / served requests falls below this."), 0.99),
    consecutiveWindows: withDefault(
      Type.Integer({ format: "int32", minimum: 1, maximum: 100, description: "Windows in a row that must violate before retraining starts (hysteresis)." }),
      3,
    ),
    minSamples: withDefault(
      Type.Integer({
        format: "int32",
        minimum: 1,
        maximum: 10000000,
        description: "A window with fewer samples is 'insufficient data' and never counts as a violation.",
      }),
      100,
    ),
    cooldown: withDefault(durationString("Minimum time between two retrainings, e.g. 1h; at least monitoring.scrapeInterval."), "1h"),
    maxRetrainings: withDefault(
      Type.Object(
        {
          count: withDefault(
            Type.Integer({ format: "int32", minimum: 0, maximum: 1000, description: "Retraining Jobs allowed per period; 0 disables retraining." }),
            3,
          ),
          period: withDefault(durationString("The sliding period the count applies to, e.g. 24h."), "24h"),
          gpuSeconds: Type.Optional(
            Type.Integer({
              format: "int64",
              minimum: 60,
              maximum: 1000000000,
              description:
                "GPU-seconds retraining Jobs may hold per period: each Job's run time (creation to finish) times the GPUs its pods request (nvidia.com/gpu, amd.com/gpu, … per pod, times search.parallelism). A Job is stopped (activeDeadlineSeconds) when the budget left runs out, and none starts with less than 60 s of it left. Unset: no GPU-seconds limit; Jobs requesting no GPU are not limited by it.",
            }),
          ),
        },
        {
          description:
            "Budget of retraining Jobs, so a persistent problem cannot burn GPU time in a loop: a count of Jobs and, optionally, GPU-seconds per sliding period.",
        },
      ),
      {},
    ),
  },
  { description: "When the model counts as unhealthy and what may be done about it." },
);

export const DataSourceSchema = Type.Object(
  {
    uri: storageUri("Training data file: pvc://, file://, http(s):// or s3://<bucket>/<key> (read with spec.model.s3's endpoint and credentials)."),
    format: withDefault(stringEnum(["csv", "jsonl", "json"] as const, "File format: csv with a header row, JSON lines, or a JSON array of rows."), "csv"),
  },
  { description: "One file of labelled training data." },
);

export const RetrainingSpecSchema = Type.Object(
  {
    image: containerImage("Image running `ballast train`; a GPU image with @tensorflow/tfjs-node-gpu for GPU nodes. Defaults to the serving image."),
    imagePullPolicy,
    command: Type.Optional(
      Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 32, description: "Container entrypoint; default: the image's (`ballast`)." }),
    ),
    args: Type.Optional(
      Type.Array(Type.String({ maxLength: 4096 }), { maxItems: 64, description: "Extra arguments appended to the `train` arguments the operator generates." }),
    ),
    priorityClassName: Type.Optional(Type.String({ maxLength: 253, pattern: dnsSubdomainPattern, description: "PriorityClass of the retraining pod." })),
    serviceAccountName: Type.Optional(
      Type.String({ maxLength: 253, pattern: dnsSubdomainPattern, description: "ServiceAccount of the retraining pod; the namespace default when unset." }),
    ),
    ...podPlacementProperties("retraining"),
    backoffLimit: withDefault(Type.Integer({ format: "int32", minimum: 0, maximum: 10, description: "Pod retries before the Job fails." }), 1),
    activeDeadlineSeconds: withDefault(
      Type.Integer({ format: "int64", minimum: 60, maximum: 604800, description: "The Job is stopped and failed after this many seconds." }),
      3600,
    ),
    ttlSecondsAfterFinished: withDefault(
      Type.Integer({ format: "int32", minimum: 0, maximum: 2592000, description: "Finished Jobs are deleted after this many seconds." }),
      86400,
    ),
    data: withDefault(
      Type.Object(
        {
          sources: Type.Optional(
            Type.Array(DataSourceSchema, {
              maxItems: 16,
              "x-kubernetes-list-type": "atomic",
              description: "Original training data. Default: the data recorded in the serving version's metadata.json.",
            }),
          ),
          includeFeedback: withDefault(
            Type.Boolean({ description: "Add the labelled feedback the sidecars logged since the serving version was trained." }),
            true,
          ),
          maxFeedbackRows: Type.Optional(
            Type.Integer({ format: "int32", minimum: 1, maximum: 100000000, description: "Use at most this many of the newest feedback rows." }),
          ),
          holdoutFraction: withDefault(
            Type.Number({ minimum: 0.05, maximum: 0.5, description: "Share of rows held out to compare candidate and serving version (never trained on)." }),
            0.2,
          ),
        },
        { description: "What the retraining Job trains on." },
      ),
      {},
    ),
    search: withDefault(
      Type.Object(
        {
          maxTrials: withDefault(
            Type.Integer({
              format: "int32",
              minimum: 1,
              maximum: 4,
              description:
                "Trials tried in order, at most: fine-tune the serving version (learning rate × 0.1), retrain from scratch, a wider network (hidden widths × 2), a stronger L2 (× 10). The best on a validation split of the training rows is the candidate.",
            }),
            4,
          ),
          parallelism: withDefault(
            Type.Integer({
              format: "int32",
              minimum: 1,
              maximum: 4,
              description: "Trials run at once: indexes of one Indexed Job (completionMode Indexed), each training its share of the trials.",
            }),
            1,
          ),
        },
        {
          description: "A bounded search, because updating a model is more than re-running fit.",
          "x-kubernetes-validations": [
            {
              // The API server checks rules against the {} default too, before nested defaults fill it.
              rule: "!has(self.parallelism) || !has(self.maxTrials) || self.parallelism <= self.maxTrials",
              message: "parallelism must not exceed maxTrials",
              fieldPath: ".parallelism",
              reason: "FieldValueInvalid",
            },
          ] satisfies CelRule[],
        },
      ),
      {},
    ),
    hyperparameters: withDefault(
      Type.Object(
        {
          epochs: withDefault(Type.Integer({ format: "int32", minimum: 1, maximum: 1000, description: "Maximum training epochs." }), 30),
          batchSize: withDefault(Type.Integer({ format: "int32", minimum: 1, maximum: 65536, description: "Rows per gradient step." }), 64),
          learningRate: withDefault(positiveNumber("Optimizer (Adam) learning rate.", { maximum: 1 }), 0.01),
          earlyStoppingPatience: withDefault(
            Type.Integer({
              format: "int32",
              minimum: 1,
              maximum: 100,
              description: "Early stopping: epochs without validation improvement before training stops.",
            }),
            5,
          ),
          l2: withDefault(Type.Number({ minimum: 0, maximum: 1, description: "L2 weight regularisation against overfitting the feedback." }), 0.0001),
        },
        { description: "Fine-tuning settings passed to `ballast train`." },
      ),
      {},
    ),
  },
  {
    description: "The retraining Job the operator starts when the policy is violated.",
    "x-kubernetes-validations": [gpuPlacementRule],
  },
);

// ---------------------------------------------------------------- shadow evaluation (spec.promotion.shadow, status.shadow)

export const ShadowSpecSchema = Type.Object(
  {
    enabled: withDefault(
      Type.Boolean({
        description:
          "Run a candidate that passed the offline gate as a shadow on mirrored live traffic, and promote it only when it is not worse than the serving version on the same requests.",
      }),
      false,
    ),
    sampleRate: withDefault(positiveNumber("Share of live inference requests each serving pod mirrors to the shadow (0 < x ≤ 1).", { maximum: 1 }), 1),
    minPairs: withDefault(
      Type.Integer({ format: "int32", minimum: 1, maximum: 10000000, description: "Rows both models answered before the shadow is judged." }),
      500,
    ),
    minLabelledPairs: withDefault(
      Type.Integer({
        format: "int32",
        minimum: 1,
        maximum: 10000000,
        description: "Of those, rows with feedback (the paired test's sample) before the shadow is judged.",
      }),
      200,
    ),
    maxDuration: withDefault(
      durationString(
        "How long the shadow may take to collect minPairs and minLabelledPairs; too few by then extends once by as long again, then rejects the candidate as Inconclusive (not counted as a failure).",
      ),
      "1h",
    ),
    replicas: withDefault(
      Type.Integer({ format: "int32", minimum: 1, maximum: 10, description: "Shadow pods (each with the serving pods' template and resources)." }),
      1,
    ),
    confidence: withDefault(
      Type.Number({
        minimum: 0.5,
        maximum: 0.9999,
        description: "Confidence of the paired test: the candidate is significantly worse when the test's p-value is below 1 − confidence.",
      }),
      0.95,
    ),
    reverse: withDefault(
      Type.Boolean({
        description:
          "After a promotion, keep the previous version running in the shadow pods while the promoted version is observed, mirror live traffic to it, and roll back when the previous version is significantly better on the same labelled requests (same paired test and confidence).",
      }),
      true,
    ),
  },
  {
    description:
      "Shadow evaluation before promotion: the candidate serves mirrored copies of live requests in its own pods (never behind the Service) and is compared pair by pair with the serving version.",
    "x-kubernetes-validations": [
      {
        // has(): the {} default is checked before nested defaults fill it.
        rule: "!has(self.minLabelledPairs) || !has(self.minPairs) || self.minLabelledPairs <= self.minPairs",
        message: "minLabelledPairs must not exceed minPairs: labelled pairs are a subset of the pairs",
        fieldPath: ".minLabelledPairs",
        reason: "FieldValueInvalid",
      },
      {
        rule: "!has(self.maxDuration) || (duration(self.maxDuration) >= duration('1m') && duration(self.maxDuration) <= duration('168h'))",
        message: "maxDuration must be between 1m and 168h",
        fieldPath: ".maxDuration",
        reason: "FieldValueInvalid",
      },
    ] satisfies CelRule[],
  },
);

export const SHADOW_VERDICTS = ["Pending", "Passed", "Rejected"] as const;
export const SHADOW_FAILED_RULES = ["SignificantlyWorse", "ErrorRate", "MinImprovement", "MaxLatencyRatio", "Inconclusive", "PreviousVersionBetter"] as const;
export const SHADOW_ROLES = ["candidate", "previous"] as const;
export type ShadowRole = (typeof SHADOW_ROLES)[number];

export const ShadowComparisonSchema = Type.Object(
  {
    role: Type.Optional(
      stringEnum(
        SHADOW_ROLES,
        "What the shadow runs: candidate (before promotion: the version under test is the shadow; absent means candidate) or previous (while a promotion is observed: the replaced version, and the version under test is the serving one).",
      ),
    ),
    version: Type.String({ maxLength: 63, description: "The version the serving pods mirror to (the candidate, or the previous version while observing)." }),
    since: Type.String({ format: "date-time", description: "When mirroring to it began (the earliest serving pod)." }),
    updateTime: Type.String({ format: "date-time", description: "When these numbers were read from the serving pods." }),
    mirrored: Type.Integer({ format: "int64", minimum: 0, description: "Requests mirrored to the shadow." }),
    dropped: Type.Integer({ format: "int64", minimum: 0, description: "Requests not mirrored because a sidecar's mirror queue was full." }),
    failed: Type.Integer({ format: "int64", minimum: 0, description: "Mirrored requests the shadow refused or did not answer." }),
    rows: Type.Integer({ format: "int64", minimum: 0, description: "Rows both models answered (pairs)." }),
    agreement: Type.Optional(fraction("Share of pairs where both models gave the same class (regression: the same value).")),
    labelledPairs: Type.Integer({ format: "int64", minimum: 0, description: "Pairs with feedback: the paired test's sample." }),
    metric: Type.String({
      maxLength: 32,
      description: "Metric compared on the labelled pairs: accuracy (classification) or mae (regression), whatever monitoring.accuracyMetric is.",
    }),
    serving: Type.Optional(Type.Number({ description: "The serving version's metric on the labelled pairs (4 significant digits)." })),
    shadow: Type.Optional(Type.Number({ description: "The shadow's metric on the same pairs (4 significant digits)." })),
    improvement: Type.Optional(
      Type.Number({
        description:
          "How much better the shadow is than the serving version (positive: the shadow is better); role candidate: compared with promotion.minImprovement.",
      }),
    ),
    test: Type.Optional(stringEnum(["McNemarExact", "WilcoxonSignedRank"] as const, "The paired test.")),
    pValue: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: "Its two-sided p-value (4 significant digits)." })),
    oneSided: Type.Optional(
      Type.Boolean({
        description:
          "Role previous: the label-free estimate said the promoted version is worse before the labelled pairs were judged, so the direction was fixed in advance and the verdict used the one-sided p-value (half the two-sided one when the previous version leads).",
      }),
    ),
    servingErrorRate: Type.Optional(fraction("Failed / served requests of the serving pods since mirroring began.")),
    shadowErrorRate: Type.Optional(fraction("Failed / mirrored requests of the shadow.")),
    servingP99Ms: Type.Optional(
      Type.Number({ minimum: 0, description: "p99 latency of the serving model on the mirrored requests (upper bound of its latency bucket, ms)." }),
    ),
    shadowP99Ms: Type.Optional(
      Type.Number({ minimum: 0, description: "p99 latency of the shadow on the same requests (upper bound of its latency bucket, ms)." }),
    ),
    verdict: stringEnum(
      SHADOW_VERDICTS,
      "Pending (too few pairs yet), Passed or Rejected. Role candidate: Passed when the candidate is not significantly worse, improves by promotion.minImprovement, errs and lags no more. Role previous: Rejected (PreviousVersionBetter) when the previous version is significantly better than the promoted one on the labelled pairs, else Passed.",
    ),
    failedRule: Type.Optional(stringEnum(SHADOW_FAILED_RULES, "Rejected: the first rule the version under test failed.")),
    message: Type.String({ maxLength: 1024, description: "The rules with both models' numbers." }),
  },
  { description: "The shadow against the serving version on the same live requests." },
);

export const EstimateWarningSchema = Type.Object(
  {
    windowEnd: Type.String({ format: "date-time", description: "End of the window whose estimate said the promoted version is worse." }),
    labelledSamples: Type.Integer({ format: "int64", minimum: 0, description: "Its labelled rows (fewer than policy.minLabelledSamples)." }),
    metric: Type.String({ maxLength: 32, description: "The live quality metric." }),
    estimated: Type.Number({ description: "The window's label-free estimate of it (4 significant digits)." }),
    message: Type.String({ maxLength: 1024, description: "What it was compared with." }),
  },
  { description: "A window of the promoted version judged on its label-free estimate as worse, before enough labels arrived." },
);

export const ObservationStatusSchema = Type.Object(
  {
    version: Type.String({ maxLength: 63, description: "The promoted version under observation." }),
    previousVersion: Type.Optional(Type.String({ maxLength: 63, description: "The version it replaced: what the reverse shadow runs." })),
    since: Type.String({ format: "date-time", description: "When observation began (the promoted version served on every pod)." }),
    reverseShadow: stringEnum(
      ["Off", "Running", "Decided", "Stopped"] as const,
      "The reverse shadow: Off (promotion.shadow.enabled or .reverse false, or no previous version), Running (the previous version serves mirrored traffic), Decided (its one look at the paired numbers was taken), Stopped (paused, or observation ended before the look).",
    ),
    // The paired numbers of the reverse shadow: the look that decided (Decided), or the last ones seen when it stopped undecided.
    comparison: Type.Optional(ShadowComparisonSchema),
    estimateWarning: Type.Optional(EstimateWarningSchema),
    message: Type.String({ maxLength: 1024, description: "How observation stands or ended." }),
  },
  { description: "The promoted version's observation: the reverse shadow's paired numbers and the label-free warning, the evidence of the outcome." },
);

/** Loop status fields of the Shadowing phase. */
const shadowLoopFields = {
  shadowDeadline: Type.Optional(
    Type.String({ format: "date-time", description: "Shadowing: the candidate is judged Inconclusive if it has too few pairs by then." }),
  ),
  shadowExtended: Type.Optional(Type.Boolean({ description: "Shadowing: the deadline was already extended once (the next Inconclusive rejects)." })),
};

export const PromotionSpecSchema = Type.Object(
  {
    mode: withDefault(stringEnum(["auto", "manual"] as const, "auto: promote a candidate that passes verification; manual: wait for approvedVersion."), "auto"),
    approvedVersion: Type.Optional(
      Type.String({ pattern: versionPattern, maxLength: 63, description: "Manual mode: set to status.candidateVersion to promote that candidate." }),
    ),
    minImprovement: withDefault(
      Type.Number({
        minimum: 0,
        maximum: 1,
        description: "The candidate must beat the serving version on the same holdout by at least this (absolute metric difference).",
      }),
      0.01,
    ),
    rollbackOnRegression: withDefault(Type.Boolean({ description: "Roll back when the promoted version does worse live than the one it replaced." }), true),
    observationWindows: withDefault(
      Type.Integer({ format: "int32", minimum: 1, maximum: 100, description: "Live windows watched after a rollout before the promotion is final." }),
      3,
    ),
    maxLiveRegression: withDefault(
      fraction(
        "Roll back when the live metric is worse than the candidate's gate metric by more than this and worse than the previous version's last healthy live metric, or the error rate rises by more than this.",
      ),
      0.05,
    ),
    maxForgetting: withDefault(
      fraction("Gate: on the original holdout the candidate may be worse than the serving version by at most this (absolute metric difference)."),
      0.05,
    ),
    maxLatencyRatio: withDefault(
      Type.Number({
        minimum: 1,
        maximum: 100,
        description: "Gate: the candidate's per-row predict latency may be at most this times the serving version's (measured in the Job, same backend).",
      }),
      1.5,
    ),
    rolloutDeadline: withDefault(durationString("Roll back when the promoted version's pods are not all Ready within this long, e.g. 10m."), "10m"),
    shadow: withDefault(ShadowSpecSchema, {}),
  },
  {
    description: "How a verified candidate replaces the serving version.",
    "x-kubernetes-validations": [
      {
        rule: "!has(self.approvedVersion) || self.mode == 'manual'",
        message: "approvedVersion is only used with mode: manual",
        fieldPath: ".approvedVersion",
        reason: "FieldValueForbidden",
      },
    ] satisfies CelRule[],
  },
);

export const ModelDeploymentSpecSchema = Type.Object(
  {
    model: ModelSpecSchema,
    serving: withDefault(ServingSpecSchema, {}),
    monitoring: MonitoringSpecSchema,
    policy: withDefault(PolicySpecSchema, {}),
    retraining: withDefault(RetrainingSpecSchema, {}),
    promotion: withDefault(PromotionSpecSchema, {}),
  },
  {
    description: "Desired state: the model, how it is served, what healthy means, how it is retrained and promoted.",
    "x-kubernetes-validations": [
      {
        rule: "!has(self.model.s3) || self.model.storageUri.startsWith('s3://') || (has(self.monitoring.reference) && self.monitoring.reference.uri.startsWith('s3://')) || (has(self.retraining) && has(self.retraining.data) && has(self.retraining.data.sources) && self.retraining.data.sources.exists(s, s.uri.startsWith('s3://')))",
        message: "model.s3 applies to s3:// URIs: model.storageUri, monitoring.reference.uri or a retraining.data.sources uri",
        fieldPath: ".model.s3",
        reason: "FieldValueForbidden",
      },
      {
        rule: "!has(self.policy) || duration(self.policy.cooldown) >= duration(self.monitoring.scrapeInterval)",
        message: "policy.cooldown must be at least monitoring.scrapeInterval",
        fieldPath: ".policy.cooldown",
        reason: "FieldValueInvalid",
      },
      {
        rule: "!has(self.policy) || !has(self.policy.minAccuracy) || self.monitoring.task == 'classification'",
        message: "policy.minAccuracy applies to classification; use policy.maxError for regression",
        fieldPath: ".policy.minAccuracy",
        reason: "FieldValueForbidden",
      },
      {
        rule: "!has(self.policy) || !has(self.policy.maxError) || self.monitoring.task == 'regression'",
        message: "policy.maxError applies to regression; use policy.minAccuracy for classification",
        fieldPath: ".policy.maxError",
        reason: "FieldValueForbidden",
      },
      {
        rule: "!has(self.policy) || !has(self.monitoring.window.size) || self.policy.minSamples <= self.monitoring.window.size",
        message: "policy.minSamples must not exceed monitoring.window.size, or no window ever has enough samples",
        fieldPath: ".policy.minSamples",
        reason: "FieldValueInvalid",
      },
      {
        rule: "!has(self.policy) || !has(self.monitoring.window.size) || self.policy.minLabelledSamples <= self.monitoring.window.size",
        message: "policy.minLabelledSamples must not exceed monitoring.window.size, or no window is ever judged on its labels",
        fieldPath: ".policy.minLabelledSamples",
        reason: "FieldValueInvalid",
      },
      {
        rule: "!has(self.policy) || duration(self.policy.maxRetrainings.period) >= duration(self.policy.cooldown)",
        message: "policy.maxRetrainings.period must be at least policy.cooldown",
        fieldPath: ".policy.maxRetrainings.period",
        reason: "FieldValueInvalid",
      },
    ] satisfies CelRule[],
  },
);

// ---------------------------------------------------------------- status

export const ConditionSchema = Type.Object(
  {
    type: Type.String({
      maxLength: 316,
      pattern: "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
      description: "Condition type: Ready, Reconciling, Stalled, Serving, DriftDetected, Degraded, Retraining, CandidateReady, LoopHalted.",
    }),
    status: stringEnum(["True", "False", "Unknown"] as const, "True, False or Unknown."),
    observedGeneration: Type.Optional(Type.Integer({ format: "int64", minimum: 0, description: "metadata.generation the condition was computed from." })),
    lastTransitionTime: Type.String({ format: "date-time", description: "When status last changed." }),
    reason: Type.String({
      minLength: 1,
      maxLength: 1024,
      pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
      description: "CamelCase machine-readable reason for the last transition.",
    }),
    message: Type.String({ maxLength: 32768, description: "Human-readable details." }),
  },
  { description: "A metav1.Condition." },
);

const verdict = stringEnum(["Healthy", "Violated", "InsufficientData"] as const, "Policy verdict for the window.");

export const MetricsSnapshotSchema = Type.Object(
  {
    windowStart: Type.Optional(Type.String({ format: "date-time", description: "Start of the window." })),
    windowEnd: Type.String({ format: "date-time", description: "End of the window the numbers describe." }),
    samples: Type.Integer({ format: "int64", minimum: 0, description: "Requests seen in the window." }),
    labelledSamples: Type.Optional(Type.Integer({ format: "int64", minimum: 0, description: "Requests with ground-truth feedback." })),
    driftShare: Type.Optional(fraction("Share of features that drifted, rounded to 4 significant digits.")),
    driftedFeatures: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: 256, description: "Features judged drifted." })),
    predictionDrift: Type.Optional(Type.Number({ description: "Drift statistic of the predictions, rounded to 4 significant digits." })),
    metric: Type.Optional(Type.String({ maxLength: 32, description: "Name of the live quality metric." })),
    accuracy: Type.Optional(
      Type.Number({
        description: "Value of the live quality metric (monitoring.accuracyMetric), rounded to 4 significant digits (the policy judges the exact value).",
      }),
    ),
    estimatedAccuracy: Type.Optional(
      Type.Number({
        description:
          "Label-free estimate of the live quality metric, rounded to 4 significant digits: a classifier's accuracy or f1 from the served rows' calibrated class probabilities (CBPE), a regressor's mae or rmse from its error model's predicted errors (DLE); absent when the version has neither.",
      }),
    ),
    estimatedMae: Type.Optional(
      Type.Number({
        minimum: 0,
        description: "Regression: the window's label-free mean absolute error (mean of the predicted |error|), rounded to 4 significant digits.",
      }),
    ),
    reconstructionError: Type.Optional(
      Type.Number({
        minimum: 0,
        description:
          "Mean PCA reconstruction error of the window's inputs (multivariate drift), rounded to 4 significant digits; absent when the version has no multivariate reference.",
      }),
    ),
    reconstructionErrorLower: Type.Optional(
      Type.Number({ minimum: 0, description: "Lower bound of the no-drift band at the window's size (training windows' mean − 3 std)." }),
    ),
    reconstructionErrorUpper: Type.Optional(
      Type.Number({ minimum: 0, description: "Upper bound of the no-drift band at the window's size (training windows' mean + 3 std)." }),
    ),
    multivariateDrift: Type.Optional(
      Type.Boolean({ description: "The reconstruction error left its band (a violation only with monitoring.drift.multivariate)." }),
    ),
    stability: Type.Optional(Type.Number({ description: "1 − std(metric)/mean(metric) over recent windows, rounded to 4 significant digits." })),
    robustness: Type.Optional(Type.Number({ description: "1 − failed requests / served requests, rounded to 4 significant digits." })),
    errorRate: Type.Optional(Type.Number({ minimum: 0, description: "Failed requests / served requests, rounded to 4 significant digits." })),
    verdict: Type.Optional(verdict),
    decidedBy: Type.Optional(
      stringEnum(
        ["labels", "estimate", "drift"] as const,
        "What decided the window's verdict (policy.triggerOn): labels (the quality metric, from feedback), estimate (its label-free estimate, when feedback is too sparse) or drift. Absent when the window could not be judged.",
      ),
    ),
    rejudgedTime: Type.Optional(
      Type.String({
        format: "date-time",
        description:
          "When labels that arrived after the window was first judged last re-judged it (its labelled numbers, verdict and decidedBy are then the re-judged ones); absent: judged once, when it closed.",
      }),
    ),
  },
  { description: "The last closed monitoring window, merged over all serving pods." },
);

/** Entries kept in status.recentWindows. */
export const MAX_RECENT_WINDOWS = 12;

export const WindowRecordSchema = Type.Object(
  {
    windowEnd: Type.String({ format: "date-time", description: "End of the window." }),
    version: Type.Optional(Type.String({ maxLength: 63, description: "Version the sidecars served in it." })),
    samples: Type.Integer({ format: "int64", minimum: 0, description: "Rows seen." }),
    labelledSamples: Type.Optional(Type.Integer({ format: "int64", minimum: 0, description: "Rows with feedback." })),
    accuracy: Type.Optional(Type.Number({ description: "The live quality metric (4 significant digits)." })),
    estimatedAccuracy: Type.Optional(Type.Number({ description: "Its label-free estimate (4 significant digits)." })),
    driftShare: Type.Optional(fraction("Share of drifted features.")),
    reconstructionError: Type.Optional(Type.Number({ minimum: 0, description: "Mean PCA reconstruction error of the inputs (4 significant digits)." })),
    errorRate: Type.Optional(Type.Number({ minimum: 0, description: "Failed / served requests." })),
    verdict: Type.Optional(stringEnum(["Healthy", "Violated", "InsufficientData"] as const, "The window's own verdict.")),
    decidedBy: Type.Optional(stringEnum(["labels", "estimate", "drift"] as const, "Which evidence judged it (policy.triggerOn).")),
    consecutiveViolations: Type.Optional(
      Type.Integer({
        format: "int32",
        minimum: 0,
        description: "The policy's violating windows in a row after this one: where re-judging a later window replays the streak from.",
      }),
    ),
    rejudgedTime: Type.Optional(
      Type.String({ format: "date-time", description: "When labels that arrived after it was first judged last re-judged it (realised late)." }),
    ),
    firstJudged: Type.Optional(
      Type.Object(
        {
          verdict: Type.Optional(stringEnum(["Healthy", "Violated", "InsufficientData"] as const, "Its verdict when it closed.")),
          decidedBy: Type.Optional(stringEnum(["labels", "estimate", "drift"] as const, "What decided it then.")),
          labelledSamples: Type.Integer({ format: "int64", minimum: 0, description: "Rows with feedback then." }),
        },
        { description: "Re-judged windows: how it was judged when it closed, before the late labels." },
      ),
    ),
  },
  { description: "One judged monitoring window, merged over the serving pods." },
);

export const PolicyStateSchema = Type.Object(
  {
    verdict: Type.Optional(verdict),
    consecutiveViolations: Type.Integer({ format: "int32", minimum: 0, description: "Violating windows in a row so far." }),
    lastEvaluationTime: Type.Optional(Type.String({ format: "date-time", description: "When the policy was last evaluated." })),
    lastTriggerTime: Type.Optional(
      Type.String({ format: "date-time", description: "End of the window that last triggered retraining; the cooldown counts from here." }),
    ),
    cooldownUntil: Type.Optional(Type.String({ format: "date-time", description: "No retraining starts before this time." })),
  },
  { description: "Where the policy's hysteresis and cooldown stand." },
);

const metricPair = (what: string) =>
  Type.Object(
    {
      rows: Type.Integer({ format: "int64", minimum: 0, description: "Rows compared." }),
      candidate: Type.Optional(Type.Number({ description: "Candidate's metric." })),
      serving: Type.Optional(Type.Number({ description: "Serving version's metric on the same rows." })),
    },
    { description: what },
  );

export const GateResultSchema = Type.Object(
  {
    passed: Type.Boolean({ description: "Whether every rule held." }),
    metric: Type.String({ maxLength: 32, description: "Metric compared (the live quality metric)." }),
    recent: metricPair("On the recent holdout: labelled feedback since the serving version went live, never trained on."),
    original: Type.Optional(metricPair("On the original holdout (the forgetting check).")),
    latencyRatio: Type.Optional(Type.Number({ minimum: 0, description: "Candidate's per-row predict latency / the serving version's." })),
    failedRule: Type.Optional(stringEnum(["MinImprovement", "MaxForgetting", "MaxLatencyRatio"] as const, "The first rule the candidate failed.")),
    message: Type.String({ maxLength: 1024, description: "The rules with both numbers." }),
  },
  { description: "The candidate against the serving version, on the same rows." },
);

export const RetrainingStatusSchema = Type.Object(
  {
    jobName: Type.String({ maxLength: 63, description: "Name of the retraining Job." }),
    attempt: Type.Optional(Type.Integer({ format: "int32", minimum: 1, description: "Attempt number (the Job name's suffix)." })),
    phase: stringEnum(["Running", "Succeeded", "Failed"] as const, "Running, Succeeded or Failed."),
    reason: Type.Optional(Type.String({ maxLength: 1024, description: "Why it was started, or why it failed." })),
    message: Type.Optional(Type.String({ maxLength: 32768, description: "Human-readable details." })),
    startTime: Type.Optional(Type.String({ format: "date-time", description: "When the Job was created." })),
    completionTime: Type.Optional(Type.String({ format: "date-time", description: "When the Job finished." })),
    gpuSeconds: Type.Optional(
      Type.Number({
        minimum: 0,
        description: "Finished: GPU-seconds the Job held (run time times the GPUs its pods request), counted against policy.maxRetrainings.gpuSeconds.",
      }),
    ),
    fromVersion: Type.Optional(Type.String({ maxLength: 63, description: "Serving version the Job started from." })),
    candidateVersion: Type.Optional(Type.String({ maxLength: 63, description: "Version the Job wrote." })),
    candidateMetric: Type.Optional(Type.Number({ description: "Candidate's metric on the recent holdout." })),
    servingMetric: Type.Optional(Type.Number({ description: "Serving version's metric on the same holdout." })),
    gate: Type.Optional(GateResultSchema),
    shadow: Type.Optional(ShadowComparisonSchema),
  },
  { description: "The latest retraining Job." },
);

export const LOOP_PHASES = ["Stable", "Training", "Shadowing", "AwaitingApproval", "Promoting", "Observing", "RollingBack", "Halted"] as const;
export type LoopPhase = (typeof LOOP_PHASES)[number];

export const LoopStatusSchema = Type.Object(
  {
    phase: stringEnum(
      LOOP_PHASES,
      "Stable (serving, watching the policy), Training (a retraining Job runs), Shadowing (a candidate that passed the gate serves mirrored live traffic beside the serving version), AwaitingApproval (manual mode: a candidate passed the gate), Promoting (rolling the pods to the candidate), Observing (watching the promoted version live), RollingBack (restoring the previous version), Halted (3 failed attempts in a row or policy.paused: nothing starts until a person acts).",
    ),
    attempt: Type.Integer({ format: "int32", minimum: 0, description: "Retraining attempts started so far; the next Job is <name>-retrain-<attempt+1>." }),
    since: Type.String({ format: "date-time", description: "When the loop entered this phase." }),
    message: Type.String({ maxLength: 1024, description: "What the loop is doing or waiting for." }),
    consecutiveFailures: Type.Optional(
      Type.Integer({ format: "int32", minimum: 0, description: "Failed, rejected or rolled-back attempts in a row; 3 halt the loop." }),
    ),
    backoffUntil: Type.Optional(
      Type.String({
        format: "date-time",
        description: "No retraining starts before this time: the cooldown, doubled after each failed attempt (at most 24h).",
      }),
    ),
    recentStarts: Type.Optional(
      Type.Array(Type.String({ format: "date-time" }), {
        maxItems: 1000,
        description: "Start times of the Jobs within policy.maxRetrainings.period (the budget's sliding window).",
      }),
    ),
    recentGpuSeconds: Type.Optional(
      Type.Array(
        Type.Object({
          start: Type.String({ format: "date-time", description: "When the Job was created." }),
          gpuSeconds: Type.Number({ minimum: 0, description: "GPU-seconds it held." }),
        }),
        {
          maxItems: 1000,
          description: "Finished Jobs started within policy.maxRetrainings.period and the GPU-seconds each held (the GPU budget's sliding window).",
        },
      ),
    ),
    observedWindows: Type.Optional(
      Type.Integer({ format: "int32", minimum: 0, description: "Observing: labelled windows of the promoted version judged so far." }),
    ),
    lastObservedWindowEnd: Type.Optional(Type.String({ format: "date-time", description: "Observing: end of the last window judged." })),
    awaitingLabels: Type.Optional(
      Type.Array(Type.String({ format: "date-time" }), {
        maxItems: MAX_RECENT_WINDOWS,
        description:
          "Observing: ends of the promoted version's windows that had too few labels when they closed; each is counted (and checked for regression) once late labels bring it to policy.minLabelledSamples, while status.recentWindows still holds it.",
      }),
    ),
    baselineMetric: Type.Optional(
      Type.Number({
        description:
          "The serving version's last healthy live metric; while a promoted version is observed, the replaced version's (the rollback rule's baseline).",
      }),
    ),
    baselineErrorRate: Type.Optional(Type.Number({ minimum: 0, description: "The serving version's live error rate in that window." })),
    lastHandledTrigger: Type.Optional(
      Type.String({ format: "date-time", description: "The status.policy.lastTriggerTime last acted on (started a Job or was refused)." }),
    ),
    approvalHandled: Type.Optional(
      Type.String({ maxLength: 63, description: "The spec.promotion.approvedVersion last acted on, so an approval is carried out once." }),
    ),
    failedAttempts: Type.Optional(
      Type.Integer({
        format: "int32",
        minimum: 0,
        description: "Attempts that failed, were rejected or rolled back; Job robustness = 1 − failedAttempts / attempt.",
      }),
    ),
    resumedBy: Type.Optional(Type.String({ maxLength: 256, description: "Value of the ballast.dev/resume annotation last acted on." })),
    haltedGeneration: Type.Optional(
      Type.Integer({ format: "int64", minimum: 0, description: "metadata.generation when the loop halted; a spec change resumes it." }),
    ),
    ...shadowLoopFields,
  },
  { description: "The closed loop's state machine: retrain, gate, promote, observe, roll back." },
);

export const HISTORY_EVENTS = [
  "Served",
  "Retrained",
  "RetrainingFailed",
  "ShadowPassed",
  "ShadowRejected",
  "Promoted",
  "Rejected",
  "RolledBack",
  "Halted",
] as const;

export const HistoryEntrySchema = Type.Object(
  {
    time: Type.String({ format: "date-time", description: "When it happened." }),
    event: stringEnum(HISTORY_EVENTS, "Served, Retrained, RetrainingFailed, ShadowPassed, ShadowRejected, Promoted, Rejected, RolledBack or Halted."),
    version: Type.String({ maxLength: 63, description: "Version concerned." }),
    previousVersion: Type.Optional(Type.String({ maxLength: 63, description: "Version it replaced, for Promoted and RolledBack." })),
    reason: Type.Optional(Type.String({ maxLength: 256, description: "CamelCase reason." })),
    message: Type.Optional(Type.String({ maxLength: 1024, description: "Human-readable details." })),
    metric: Type.Optional(Type.Number({ description: "Metric value that decided it." })),
  },
  { description: "One step in the model's life." },
);

export const ModelDeploymentStatusSchema = Type.Object(
  {
    observedGeneration: Type.Optional(Type.Integer({ format: "int64", minimum: 0, description: "metadata.generation the operator last reconciled." })),
    conditions: Type.Optional(
      Type.Array(ConditionSchema, {
        maxItems: 16,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        description:
          "kstatus conditions (Ready, Reconciling, Stalled) and domain conditions (Serving, DriftDetected, Degraded, Retraining, CandidateReady, LoopHalted).",
      }),
    ),
    servingVersion: Type.Optional(Type.String({ maxLength: 63, description: "Version the serving pods run." })),
    candidateVersion: Type.Optional(Type.String({ maxLength: 63, description: "Trained version waiting for verification or approval." })),
    targetVersion: Type.Optional(
      Type.String({
        maxLength: 63,
        description: "Version the operator pins the serving pods to after a promotion or rollback; unset: the newest non-candidate version in the store.",
      }),
    ),
    previousVersion: Type.Optional(Type.String({ maxLength: 63, description: "Version served before the last promotion (what a rollback restores)." })),
    loop: Type.Optional(LoopStatusSchema),
    replicas: Type.Optional(Type.Integer({ format: "int32", minimum: 0, description: "Serving pods that exist (scale subresource)." })),
    readyReplicas: Type.Optional(Type.Integer({ format: "int32", minimum: 0, description: "Serving pods that are ready." })),
    selector: Type.Optional(Type.String({ maxLength: 1024, description: "Label selector of the serving pods, for the scale subresource and HPAs." })),
    lastMetrics: Type.Optional(MetricsSnapshotSchema),
    recentWindows: Type.Optional(
      Type.Array(WindowRecordSchema, {
        maxItems: MAX_RECENT_WINDOWS,
        "x-kubernetes-list-type": "atomic",
        description: `The last ${MAX_RECENT_WINDOWS} judged windows, oldest first: the timeline the loop observes a promoted version on.`,
      }),
    ),
    policy: Type.Optional(PolicyStateSchema),
    lastRetraining: Type.Optional(RetrainingStatusSchema),
    shadow: Type.Optional(ShadowComparisonSchema),
    observation: Type.Optional(ObservationStatusSchema),
    history: Type.Optional(
      Type.Array(HistoryEntrySchema, {
        maxItems: MAX_HISTORY,
        "x-kubernetes-list-type": "atomic",
        description: `Last ${MAX_HISTORY} versions served, trained, promoted, rejected and rolled back, oldest first.`,
      }),
    ),
  },
  { description: "Observed state, written by the operator." },
);

// ---------------------------------------------------------------- types

/** The spec as a user writes it: defaulted fields optional. */
export type ModelDeploymentSpec = Static<typeof ModelDeploymentSpecSchema>;
/** The spec after API server defaulting (what the operator reads): defaulted fields present. */
export type ResolvedModelDeploymentSpec = Resolved<typeof ModelDeploymentSpecSchema>;
export type ModelDeploymentStatus = Static<typeof ModelDeploymentStatusSchema>;
export type Condition = Static<typeof ConditionSchema>;
export type ConditionStatus = Condition["status"];
export type MetricsSnapshot = Static<typeof MetricsSnapshotSchema>;
export type WindowRecord = Static<typeof WindowRecordSchema>;
export type PolicyState = Static<typeof PolicyStateSchema>;
export type RetrainingStatus = Static<typeof RetrainingStatusSchema>;
export type LoopStatus = Static<typeof LoopStatusSchema>;
export type GateResult = Static<typeof GateResultSchema>;
export type HistoryEntry = Static<typeof HistoryEntrySchema>;
export type ShadowComparison = Static<typeof ShadowComparisonSchema>;
export type ObservationStatus = Static<typeof ObservationStatusSchema>;
export type EstimateWarning = Static<typeof EstimateWarningSchema>;
export type Toleration = Static<typeof TolerationSchema>;
export type EnvVar = Static<typeof EnvVarSchema>;
export type ResourceRequirements = Static<typeof ResourceRequirementsSchema>;
export type Feature = Static<typeof FeatureSchema>;
export type DataSource = Static<typeof DataSourceSchema>;
export type { DriftMethod, DriftMethodChoice } from "../vocabulary/drift.js";
export type AccuracyMetric = (typeof CLASSIFICATION_METRICS)[number] | (typeof REGRESSION_METRICS)[number];

export interface ModelDeployment {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: V1ObjectMeta;
  spec: ModelDeploymentSpec;
  status?: ModelDeploymentStatus;
}

/** A ModelDeployment as read from the API server: its spec is defaulted. */
export interface ResolvedModelDeployment extends Omit<ModelDeployment, "spec"> {
  spec: ResolvedModelDeploymentSpec;
}

export interface ModelDeploymentList {
  apiVersion: typeof API_VERSION;
  kind: typeof LIST_KIND;
  metadata: { resourceVersion?: string; continue?: string };
  items: ResolvedModelDeployment[];
}
