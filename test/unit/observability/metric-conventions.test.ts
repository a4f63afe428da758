// What Prometheus users expect of metric names and labels (https://prometheus.io/docs/practices/naming/):
// counters end in _total, base units (seconds, bytes) in the name, bounded labels that never carry request data.
import { beforeAll, describe, expect, it } from "vitest";
import { metricCatalog, type Catalog, type CatalogEntry } from "./metric-catalog.js";

/** Every label a Ballast metric may carry: each has a bounded set of values (a schema, an enum, a status code). */
const BOUNDED_LABELS = new Set([
  // which object: the ModelDeployment, the version it serves, a feature of the model's schema
  "namespace",
  "modeldeployment",
  "version",
  "model",
  "feature",
  // fixed vocabularies
  "method",
  "metric",
  "kind",
  "route",
  "code",
  "reason",
  "result",
  "outcome",
  "phase",
  "type",
  "status",
  "rule",
  "backend",
  // controller-runtime's own
  "controller",
  "name",
]);

/** Units that are not base units, as name parts: durations are _seconds, sizes _bytes. */
const NON_BASE_UNITS = /_(ms|milliseconds|microseconds|us|ns|nanoseconds|minutes|hours|days|kb|kib|mb|mib|gb|gib|kilobytes|megabytes|percent)(_|$)/;

describe("metric names and labels", () => {
  let catalog: Catalog;
  let all: (CatalogEntry & { process: string })[] = [];

  beforeAll(async () => {
    catalog = await metricCatalog();
    all = [...catalog.operator.map((m) => ({ ...m, process: "operator" })), ...catalog.sidecar.map((m) => ({ ...m, process: "sidecar" }))];
  });

  it("the operator and the sidecar register the metrics the dashboard and the alerts read", () => {
    expect(catalog.operator.map((m) => m.name)).toEqual(
      expect.arrayContaining([
        "ballast_modeldeployment_loop_phase",
        "ballast_retraining_jobs_started_total",
        "ballast_retraining_jobs_failed_total",
        "ballast_retraining_job_duration_seconds",
        "ballast_promotions_total",
        "ballast_rejections_total",
        "ballast_rollbacks_total",
        "ballast_operator_sidecar_scrape_errors_total",
        "controller_runtime_reconcile_total",
      ]),
    );
    expect(catalog.sidecar.map((m) => m.name)).toEqual(
      expect.arrayContaining([
        "ballast_model_quality",
        "ballast_model_quality_estimated",
        "ballast_drift_share_ratio",
        "ballast_feature_drift",
        "ballast_window_labelled_ratio",
        "ballast_sidecar_requests_total",
        "ballast_sidecar_upstream_duration_seconds",
        "ballast_sidecar_added_latency_seconds",
        "ballast_sidecar_log_written_bytes_total",
        "ballast_sidecar_log_sealed_segments_total",
      ]),
    );
  });

  it("counters end in _total and nothing else does", () => {
    for (const m of all)
      expect({ name: m.name, type: m.type, total: m.name.endsWith("_total") }).toEqual({ name: m.name, type: m.type, total: m.type === "counter" });
  });

  it("durations and sizes are in base units: histograms end in _seconds or _bytes, no name says ms, minutes or MB", () => {
    for (const m of all) {
      expect(m.name).toMatch(/^[a-z_][a-z0-9_]*$/);
      expect(m.name).not.toMatch(NON_BASE_UNITS);
      if (m.type === "histogram") expect(m.name).toMatch(/_(seconds|bytes)$/);
    }
  });

  it("Ballast's own metrics are prefixed ballast_; the others keep controller-runtime's names, so existing dashboards work", () => {
    const foreign = all.filter((m) => !m.name.startsWith("ballast_")).map((m) => m.name);
    for (const name of foreign) expect(name).toMatch(/^(controller_runtime|workqueue|leader_election)_/);
  });

  it("labels are bounded: only the ModelDeployment, version, feature and fixed vocabularies, never request data", () => {
    for (const m of all)
      for (const label of m.labels) expect({ metric: m.name, label, bounded: BOUNDED_LABELS.has(label) }).toEqual({ metric: m.name, label, bounded: true });
  });

  it("every Ballast metric about a model says which ModelDeployment it is about", () => {
    const perModel = all.filter((m) => m.process === "sidecar" || m.labels.includes("modeldeployment"));
    expect(perModel.length).toBeGreaterThan(30);
    for (const m of perModel) expect({ metric: m.name, labels: m.labels.slice(0, 2) }).toEqual({ metric: m.name, labels: ["namespace", "modeldeployment"] });
  });
});
