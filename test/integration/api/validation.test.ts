// Given the CRD on a real API server, a user who writes a bad ModelDeployment is told which field is
// wrong at `kubectl apply` time, before anything reaches the operator.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { applyModelDeploymentDefaults, type ModelDeployment } from "../../../src/api/index.js";
import { ensureNamespace, installCrds, kubectl, kubectlOk } from "./kubectl.js";

const repoRoot = new URL("../../../", import.meta.url).pathname;
const namespace = "api-validation";
const example = parse(readFileSync(`${repoRoot}/examples/weather-classifier.yaml`, "utf8")) as ModelDeployment;

// Loosely typed on purpose: invalid cases put values of the wrong type where the schema forbids them.
type Loose = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function manifest(name: string, mutate: (spec: Loose, metadata: Loose) => void): string {
  const obj = structuredClone(example) as Loose;
  obj.metadata = { name, namespace };
  mutate(obj.spec, obj.metadata);
  return JSON.stringify(obj);
}

interface InvalidCase {
  what: string;
  field: string;
  mutate: (spec: Loose, metadata: Loose) => void;
}

const gpuLimits = { limits: { "nvidia.com/gpu": 1 } };

const invalidCases: InvalidCase[] = [
  { what: "storage URI with an unsupported scheme", field: "spec.model.storageUri", mutate: (s) => (s.model.storageUri = "gs://bucket/models") },
  // s3:// (issue 13 §3): a valid bucket name, no ".." in the prefix, s3 settings only with an s3:// store, never for files the pods read.
  { what: "s3:// store with an upper-case bucket", field: "spec.model.storageUri", mutate: (s) => (s.model.storageUri = "s3://Models/store") },
  { what: "s3:// store prefix with a .. segment", field: "spec.model.storageUri", mutate: (s) => (s.model.storageUri = "s3://models/a/../b") },
  { what: "s3 settings for a pvc:// store", field: "spec.model.s3", mutate: (s) => (s.model.s3 = { forcePathStyle: true }) },
  {
    what: "s3 endpoint with a path",
    field: "spec.model.s3.endpoint",
    mutate: (s) => ((s.model.storageUri = "s3://models/store"), (s.model.s3 = { endpoint: "http://minio:9000/models" })),
  },
  {
    what: "reference profile in an s3:// bucket no S3 name allows",
    field: "spec.monitoring.reference.uri",
    mutate: (s) => (s.monitoring.reference = { uri: "s3://Models_Bucket/ref.json" }),
  },
  { what: "relative file:// URI", field: "spec.model.storageUri", mutate: (s) => (s.model.storageUri = "file://models/weather") },
  { what: "model name that is not a DNS label", field: "spec.model.name", mutate: (s) => (s.model.name = "Weather_Model") },
  { what: "unknown model format", field: "spec.model.format", mutate: (s) => (s.model.format = "onnx") },
  { what: "model missing entirely", field: "spec.model", mutate: (s) => delete s.model },
  { what: "replicas as a string", field: "spec.serving.replicas", mutate: (s) => (s.serving.replicas = "two") },
  { what: "negative replicas", field: "spec.serving.replicas", mutate: (s) => (s.serving.replicas = -1) },
  { what: "privileged serving port", field: "spec.serving.port", mutate: (s) => (s.serving.port = 80) },
  { what: "serving port on the sidecar's monitoring port", field: "spec.serving.port", mutate: (s) => (s.serving.port = 9090) },
  { what: "serving port on the model server's health port", field: "spec.serving.port", mutate: (s) => (s.serving.port = 9000) },
  {
    what: "feedbackAuth without a key",
    field: "spec.monitoring.feedbackAuth.secretRef.key",
    mutate: (s) => (s.monitoring.feedbackAuth = { secretRef: { name: "feedback" } }),
  },
  { what: "CPU limit that is not a quantity", field: "spec.serving.resources.limits.cpu", mutate: (s) => (s.serving.resources.limits.cpu = "lots") },
  { what: "GPU serving pod with no way onto a GPU node", field: "spec.serving.tolerations", mutate: (s) => (s.serving.resources = gpuLimits) },
  {
    what: "GPU retraining Job with no toleration or nodeSelector",
    field: "spec.retraining.tolerations",
    mutate: (s) => {
      delete s.retraining.tolerations;
      delete s.retraining.nodeSelector;
    },
  },
  {
    what: "toleration with operator Exists and a value",
    field: "spec.retraining.tolerations[0].value",
    mutate: (s) => (s.retraining.tolerations = [{ key: "nvidia.com/gpu", operator: "Exists", value: "present" }]),
  },
  { what: "no features to monitor", field: "spec.monitoring.features", mutate: (s) => (s.monitoring.features = []) },
  {
    what: "a feature listed twice",
    field: "spec.monitoring.features[1]",
    mutate: (s) =>
      (s.monitoring.features = [
        { name: "wind", type: "numeric" },
        { name: "wind", type: "categorical" },
      ]),
  },
  { what: "unknown feature type", field: "spec.monitoring.features[0].type", mutate: (s) => (s.monitoring.features[0].type = "text") },
  { what: "label field also used as a feature", field: "spec.monitoring.labelField", mutate: (s) => (s.monitoring.labelField = "wind") },
  { what: "unknown task", field: "spec.monitoring.task", mutate: (s) => (s.monitoring.task = "ranking") },
  { what: "regression metric on a classifier", field: "spec.monitoring.accuracyMetric", mutate: (s) => (s.monitoring.accuracyMetric = "rmse") },
  { what: "unknown drift method", field: "spec.monitoring.drift.method", mutate: (s) => (s.monitoring.drift = { method: "kl" }) },
  { what: "per-feature drift method auto", field: "spec.monitoring.features[0].driftMethod", mutate: (s) => (s.monitoring.features[0].driftMethod = "auto") },
  { what: "unknown multiple-testing correction", field: "spec.monitoring.drift.correction", mutate: (s) => (s.monitoring.drift = { correction: "holm" }) },
  {
    what: "KS p-value threshold above 1",
    field: "spec.monitoring.drift.threshold",
    mutate: (s) => (s.monitoring.drift = { method: "ks", threshold: 5 }),
  },
  { what: "threshold with method auto", field: "spec.monitoring.drift.threshold", mutate: (s) => (s.monitoring.drift = { threshold: 0.2 }) },
  // Calibrated thresholds (the default) come from the reference: a fixed threshold or a correction needs thresholdMode fixed.
  {
    what: "fixed threshold under calibrated thresholds",
    field: "spec.monitoring.drift.threshold",
    mutate: (s) => (s.monitoring.drift = { method: "psi", threshold: 0.2 }),
  },
  {
    what: "correction under calibrated thresholds",
    field: "spec.monitoring.drift.correction",
    mutate: (s) => (s.monitoring.drift = { method: "ks", correction: "bonferroni" }),
  },
  { what: "unknown threshold mode", field: "spec.monitoring.drift.thresholdMode", mutate: (s) => (s.monitoring.drift = { thresholdMode: "adaptive" }) },
  { what: "window with neither size nor duration", field: "spec.monitoring.window", mutate: (s) => (s.monitoring.window = {}) },
  { what: "window duration in words", field: "spec.monitoring.window.duration", mutate: (s) => (s.monitoring.window.duration = "5 minutes") },
  { what: "scrape interval under a second", field: "spec.monitoring.scrapeInterval", mutate: (s) => (s.monitoring.scrapeInterval = "500ms") },
  // "0" passes the one duration grammar (src/api/duration.ts); CEL's duration() must read it for the rule to refuse it.
  { what: "scrape interval of 0", field: "spec.monitoring.scrapeInterval", mutate: (s) => (s.monitoring.scrapeInterval = "0") },
  { what: "cooldown with a fraction", field: "spec.policy.cooldown", mutate: (s) => (s.policy.cooldown = "1.5h") },
  { what: "drift share threshold above 1", field: "spec.policy.maxDriftShare", mutate: (s) => (s.policy.maxDriftShare = 1.5) },
  { what: "negative accuracy threshold", field: "spec.policy.minAccuracy", mutate: (s) => (s.policy.minAccuracy = -0.1) },
  {
    what: "accuracy threshold on a regression model",
    field: "spec.policy.minAccuracy",
    mutate: (s) => {
      s.monitoring.task = "regression";
      s.monitoring.accuracyMetric = "mae";
    },
  },
  { what: "error threshold on a classifier", field: "spec.policy.maxError", mutate: (s) => (s.policy.maxError = 2) },
  { what: "cooldown shorter than the scrape interval", field: "spec.policy.cooldown", mutate: (s) => (s.policy.cooldown = "10s") },
  { what: "min samples larger than the window", field: "spec.policy.minSamples", mutate: (s) => (s.policy.minSamples = 5000) },
  { what: "zero consecutive windows", field: "spec.policy.consecutiveWindows", mutate: (s) => (s.policy.consecutiveWindows = 0) },
  { what: "paused as a string", field: "spec.policy.paused", mutate: (s) => (s.policy.paused = "yes") },
  {
    what: "retraining budget period shorter than the cooldown",
    field: "spec.policy.maxRetrainings.period",
    mutate: (s) => (s.policy.maxRetrainings = { count: 3, period: "5m" }),
  },
  {
    what: "a GPU-seconds budget too small for a minute of one GPU",
    field: "spec.policy.maxRetrainings.gpuSeconds",
    mutate: (s) => (s.policy.maxRetrainings = { count: 3, gpuSeconds: 30 }),
  },
  { what: "zero learning rate", field: "spec.retraining.hyperparameters.learningRate", mutate: (s) => (s.retraining.hyperparameters.learningRate = 0) },
  { what: "holdout of 90%", field: "spec.retraining.data.holdoutFraction", mutate: (s) => (s.retraining.data = { holdoutFraction: 0.9 }) },
  {
    what: "training data over FTP",
    field: "spec.retraining.data.sources[0].uri",
    mutate: (s) => (s.retraining.data = { sources: [{ uri: "ftp://data.example.com/weather.csv" }] }),
  },
  { what: "unknown promotion mode", field: "spec.promotion.mode", mutate: (s) => (s.promotion.mode = "yolo") },
  { what: "approved version in auto mode", field: "spec.promotion.approvedVersion", mutate: (s) => (s.promotion.approvedVersion = "v2") },
  { what: "shadow sample rate of 0", field: "spec.promotion.shadow.sampleRate", mutate: (s) => (s.promotion.shadow = { enabled: true, sampleRate: 0 }) },
  { what: "shadow sample rate above 1", field: "spec.promotion.shadow.sampleRate", mutate: (s) => (s.promotion.shadow = { sampleRate: 1.5 }) },
  { what: "shadow without pairs", field: "spec.promotion.shadow.minPairs", mutate: (s) => (s.promotion.shadow = { minPairs: 0 }) },
  {
    what: "more labelled pairs than pairs",
    field: "spec.promotion.shadow.minLabelledPairs",
    mutate: (s) => (s.promotion.shadow = { minPairs: 100, minLabelledPairs: 200 }),
  },
  { what: "shadow maxDuration under a minute", field: "spec.promotion.shadow.maxDuration", mutate: (s) => (s.promotion.shadow = { maxDuration: "30s" }) },
  { what: "shadow maxDuration not a duration", field: "spec.promotion.shadow.maxDuration", mutate: (s) => (s.promotion.shadow = { maxDuration: "an hour" }) },
  { what: "shadow replicas above 10", field: "spec.promotion.shadow.replicas", mutate: (s) => (s.promotion.shadow = { replicas: 50 }) },
  { what: "shadow confidence of 1", field: "spec.promotion.shadow.confidence", mutate: (s) => (s.promotion.shadow = { confidence: 1 }) },
  { what: "name too long for the derived Service and Job names", field: "metadata.name", mutate: (_s, m) => (m.name = "w".repeat(50)) },
  // ".." would resolve outside the claim's mount root once joined onto it (issue 10, item 11).
  { what: "store path climbing out of its claim", field: "spec.model.storageUri", mutate: (s) => (s.model.storageUri = "pvc://models/../../etc/x") },
  { what: "file:// store path with a .. segment", field: "spec.model.storageUri", mutate: (s) => (s.model.storageUri = "file:///srv/models/../../etc") },
  {
    what: "reference profile outside its claim",
    field: "spec.monitoring.reference.uri",
    mutate: (s) => (s.monitoring.reference = { uri: "pvc://models/../../etc/passwd" }),
  },
  {
    what: "training data outside its claim",
    field: "spec.retraining.data.sources[0].uri",
    mutate: (s) => (s.retraining.data = { sources: [{ uri: "pvc://data/weather/../../../root/x.csv" }] }),
  },
  // The store refuses these names; the API server must too, or the serving pods crash-loop.
  { what: "pinned version in upper case", field: "spec.model.version", mutate: (s) => (s.model.version = "V2") },
  { what: "pinned version ending in a dash", field: "spec.model.version", mutate: (s) => (s.model.version = "v2-") },
  {
    what: "approved version in upper case",
    field: "spec.promotion.approvedVersion",
    mutate: (s) => (s.promotion = { ...s.promotion, mode: "manual", approvedVersion: "Prod" }),
  },
];

describe("ModelDeployment validation by the API server", () => {
  beforeAll(() => {
    installCrds(repoRoot);
    ensureNamespace(namespace);
  });

  // Later suites may run an operator over every namespace: leave no ModelDeployments behind for it.
  afterAll(() => {
    kubectl(["delete", "modeldeployments", "--all", "-n", namespace, "--wait=false"]);
  });

  it("accepts the shipped example and stores it defaulted exactly as applyModelDeploymentDefaults does", () => {
    kubectl(["delete", "modeldeployment", "weather", "-n", namespace, "--ignore-not-found", "--wait=true"]);
    kubectlOk(
      ["create", "-f", "-"],
      manifest("weather", () => {}),
    );
    const stored = JSON.parse(kubectlOk(["get", "modeldeployment", "weather", "-n", namespace, "-o", "json"])) as ModelDeployment;
    expect(stored.spec).toEqual(applyModelDeploymentDefaults(example.spec));
    expect(stored.metadata.generation).toBe(1);
  });

  it(`rejects ${invalidCases.length} invalid ModelDeployments, each with a message naming the field`, () => {
    expect(invalidCases.length).toBeGreaterThanOrEqual(20);
    const failures: string[] = [];
    invalidCases.forEach((c, i) => {
      const res = kubectl(["create", "-f", "-"], manifest(`invalid-${i}`, c.mutate));
      if (res.status === 0) failures.push(`${c.what}: accepted`);
      else if (!res.stderr.includes(`${c.field}:`)) failures.push(`${c.what}: message does not name ${c.field}: ${res.stderr.trim()}`);
    });
    expect(failures).toEqual([]);
    // Rejected objects were never stored, so no operator could ever see them.
    const names = kubectlOk(["get", "modeldeployments", "-n", namespace, "-o", "jsonpath={.items[*].metadata.name}"]).split(" ");
    expect(names.filter((n) => n.startsWith("invalid-"))).toEqual([]);
  });

  it("accepts durations in every form the CLI flags read too: compound, and 0 for no time bound", () => {
    kubectl(["delete", "modeldeployment", "durations", "-n", namespace, "--ignore-not-found", "--wait=true"]);
    kubectlOk(
      ["create", "-f", "-"],
      manifest("durations", (s) => {
        s.monitoring.window = { size: 500, duration: "0" };
        s.policy.cooldown = "1h30m";
      }),
    );
    const stored = JSON.parse(kubectlOk(["get", "modeldeployment", "durations", "-n", namespace, "-o", "json"])) as ModelDeployment;
    expect(stored.spec.monitoring?.window).toEqual({ size: 500, duration: "0" });
    expect(stored.spec.policy?.cooldown).toBe("1h30m");
  });

  it("accepts Evidently's fixed thresholds with a correction when thresholdMode is fixed", () => {
    kubectlOk(
      ["create", "-f", "-"],
      manifest("fixed-thresholds", (s) => (s.monitoring.drift = { method: "ks", thresholdMode: "fixed", threshold: 0.01, correction: "benjamini-hochberg" })),
    );
    const stored = JSON.parse(kubectlOk(["get", "modeldeployment", "fixed-thresholds", "-n", namespace, "-o", "json"])) as ModelDeployment;
    expect(stored.spec.monitoring.drift).toEqual({
      method: "ks",
      thresholdMode: "fixed",
      threshold: 0.01,
      correction: "benjamini-hochberg",
      multivariate: false,
    });
  });

  it("refuses to change model.name on an existing ModelDeployment", () => {
    kubectl(
      ["apply", "-f", "-"],
      manifest("immutable", () => {}),
    );
    const res = kubectl(["patch", "modeldeployment", "immutable", "-n", namespace, "--type=merge", "-p", '{"spec":{"model":{"name":"other"}}}']);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toContain("spec.model.name: Invalid value");
    expect(res.stderr).toContain("model.name is immutable");
  });

  it("scales serving replicas through the scale subresource (kubectl scale, HPAs)", () => {
    kubectl(
      ["apply", "-f", "-"],
      manifest("scalable", () => {}),
    );
    kubectlOk(["scale", "modeldeployment", "scalable", "-n", namespace, "--replicas=3"]);
    expect(kubectlOk(["get", "modeldeployment", "scalable", "-n", namespace, "-o", "jsonpath={.spec.serving.replicas}"])).toBe("3");
  });

  it("explains fields with their descriptions (kubectl explain)", () => {
    const out = kubectlOk(["explain", "modeldeployment.spec.policy.cooldown"]);
    expect(out).toContain("Minimum time between two retrainings");
  });

  describe("with the image allow-list policy of examples/image-allowlist-policy.yaml", () => {
    // The example as shipped, but bound to this suite's namespace only (the cluster is shared) and with its
    // parameters here too.
    type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    const docs = parseAllDocuments(readFileSync(`${repoRoot}/examples/image-allowlist-policy.yaml`, "utf8")).map((d) => d.toJSON() as Doc);
    const params = docs.find((d) => d.kind === "ConfigMap")!;
    const policy = docs.find((d) => d.kind === "ValidatingAdmissionPolicy")!;
    const binding = docs.find((d) => d.kind === "ValidatingAdmissionPolicyBinding")!;
    params.metadata.namespace = namespace;
    policy.metadata.name = binding.spec.policyName = binding.metadata.name = "ballast-image-allowlist-test";
    binding.spec.paramRef.namespace = namespace;
    binding.spec.matchResources = { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } } };
    const withImages = (serving?: string, retraining?: string) => (s: Loose) => {
      if (serving) s.serving.image = serving;
      if (retraining) s.retraining.image = retraining;
    };
    const allowed = "ghcr.io/ballast-dev/ballast:0.1.0";

    beforeAll(async () => {
      // Created before the policy exists, with an image it does not allow.
      kubectl(["delete", "modeldeployment", "legacy", "-n", namespace, "--ignore-not-found", "--wait=true"]);
      kubectlOk(["create", "-f", "-"], manifest("legacy", withImages("quay.io/someone/old:1")));
      kubectlOk(["apply", "--server-side", "-f", "-"], docs.map((d) => stringify(d)).join("---\n"));
      // The API server picks a new binding up from its informer within a moment.
      const deadline = Date.now() + 30_000;
      while (kubectl(["create", "--dry-run=server", "-f", "-"], manifest("probe", withImages("docker.io/evil/miner:latest"))).status === 0) {
        if (Date.now() > deadline) throw new Error("the ValidatingAdmissionPolicy never took effect");
        await new Promise((r) => setTimeout(r, 250));
      }
    }, 60_000);

    afterAll(() => {
      kubectl(["delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", "ballast-image-allowlist-test", "--ignore-not-found"]);
      kubectl(["delete", "configmap", params.metadata.name, "-n", namespace, "--ignore-not-found"]);
    });

    it("refuses a serving or retraining image outside the allow-list, naming the field and the allow-list", () => {
      const evil = "docker.io/evil/miner:latest";
      const lookalike = "ghcr.io/ballast-dev/ballast-evil:1";
      for (const [what, mutate, message] of [
        ["serving", withImages(evil), `spec.serving.image: ${evil} is not allowed`],
        ["retraining", withImages(undefined, evil), `spec.retraining.image: ${evil} is not allowed`],
        ["lookalike", withImages(lookalike), `spec.serving.image: ${lookalike} is not allowed`],
      ] as const) {
        const res = kubectl(["create", "-f", "-"], manifest(`image-${what}`, mutate));
        expect(res.status, what).not.toBe(0);
        expect(res.stderr).toContain(message);
        expect(res.stderr).toContain(`ConfigMap ${namespace}/ballast-image-allowlist`);
      }
    });

    it("admits allowed images and the operator's default (no image)", () => {
      for (const [name, mutate] of [
        ["image-allowed", withImages(allowed, allowed)],
        ["image-default", () => {}],
      ] as const) {
        kubectl(["delete", "modeldeployment", name, "-n", namespace, "--ignore-not-found", "--wait=true"]);
        kubectlOk(["create", "-f", "-"], manifest(name, mutate));
      }
    });

    it("lets an older ModelDeployment with a disallowed image be updated and deleted, but not given another disallowed image", () => {
      kubectlOk(["label", "modeldeployment", "legacy", "-n", namespace, "team=ml"]);
      kubectlOk(["patch", "modeldeployment", "legacy", "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":["ballast.dev/serving-cleanup"]}}']);
      const res = kubectl([
        "patch",
        "modeldeployment",
        "legacy",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"serving":{"image":"quay.io/someone/new:2"}}}',
      ]);
      expect(res.status).not.toBe(0);
      expect(res.stderr).toContain("spec.serving.image: quay.io/someone/new:2 is not allowed");
      kubectlOk(["delete", "modeldeployment", "legacy", "-n", namespace, "--wait=false"]);
      kubectlOk(["patch", "modeldeployment", "legacy", "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
    });
  });
});
