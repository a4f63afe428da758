// Given sidecars that answer too much, answer garbage, or report hundreds of drifted features, the operator reads
// at most its cap, drops only the bad pod, and writes a status the CRD accepts.
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { FormatRegistry, TypeRegistry } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  applyModelDeploymentDefaults,
  ModelDeploymentStatusSchema,
  type ModelDeploymentSpec,
  type ModelDeploymentStatus,
  type ResolvedModelDeployment,
} from "../../../src/api/index.js";
import { compare, DatasetProfile, type FeatureSchema } from "../../../src/monitoring/index.js";
import {
  classificationCounts,
  labelledMetrics,
  PREDICTION_COLUMN,
  SUMMARY_FORMAT,
  type SidecarSummary,
  type WindowSummary,
} from "../../../src/monitoring/summary.js";
import { monitoringStatus, type PodScrape } from "../../../src/operator/monitoring/health.js";
import { MAX_CONDITION_MESSAGE_LENGTH } from "../../../src/operator/monitoring/messages.js";
import { DEFAULT_MAX_SUMMARY_BYTES, scrapeSidecar } from "../../../src/operator/monitoring/reconciler.js";

// The CRD's date-time format and string enums (Type.Unsafe in the API), as the API server checks them.
if (!FormatRegistry.Has("date-time")) FormatRegistry.Set("date-time", (v) => /^\d{4}-\d{2}-\d{2}T/.test(v) && !Number.isNaN(Date.parse(v)));
if (!TypeRegistry.Has("Unsafe"))
  TypeRegistry.Set<{ type?: string; enum?: unknown[] }>(
    "Unsafe",
    (schema, value) => (schema.type !== "string" || typeof value === "string") && (!schema.enum || schema.enum.includes(value)),
  );

const NOW = new Date("2026-11-26T12:30:00Z");
const T0 = Date.parse("2026-11-26T12:00:00Z");

function windowOf(schema: FeatureSchema[], reference: Record<string, unknown>[], rows: Record<string, unknown>[]): WindowSummary {
  const features = DatasetProfile.fromRows(schema, rows);
  const labelled = classificationCounts(
    rows.map(() => "yes"),
    rows.map(() => "yes"),
  );
  return {
    start: new Date(T0).toISOString(),
    end: new Date(T0 + 60_000).toISOString(),
    closed: true,
    requests: rows.length,
    failedRequests: 0,
    rejectedRequests: 0,
    rows: rows.length,
    features: features.toJSON(),
    predictions: DatasetProfile.fromRows(
      [{ name: PREDICTION_COLUMN, type: "categorical" }],
      rows.map(() => ({ prediction: "yes" })),
    ).toJSON(),
    labelled,
    metrics: labelledMetrics(labelled),
    drift: compare(DatasetProfile.fromRows(schema, reference), features, { method: schema.every((f) => f.type === "numeric") ? "ks" : "chisquare" }),
  };
}

function summaryOf(pod: string, windows: WindowSummary[], model = "shop"): SidecarSummary {
  return {
    format: SUMMARY_FORMAT,
    pod,
    model,
    version: "v1",
    task: "classification",
    generatedAt: new Date(T0 + 60_000).toISOString(),
    totals: { requests: 0, failedRequests: 0, rejectedRequests: 0, rows: 0, feedback: 0, feedbackRejected: 0 },
    windows,
  };
}

function md(features: FeatureSchema[]): ResolvedModelDeployment {
  return {
    apiVersion: "ballast.dev/v1alpha1",
    kind: "ModelDeployment",
    metadata: { name: "shop", namespace: "ml", generation: 1 },
    spec: applyModelDeploymentDefaults({
      model: { name: "shop", storageUri: "pvc://models/store" },
      monitoring: { features, labelField: "label", task: "classification", window: { size: 50 } },
      policy: { minSamples: 10, consecutiveWindows: 1, cooldown: "1h" },
    } as ModelDeploymentSpec),
    status: { observedGeneration: 1 },
  };
}

const shopSchema: FeatureSchema[] = [{ name: "size", type: "numeric" }];
const calmRows = (n: number) => Array.from({ length: n }, (_, i) => ({ size: i % 10 }));

/** Status as the API server would take it: every CRD bound (message lengths, driftedFeatures) holds. */
function crdErrors(status: ModelDeploymentStatus): string[] {
  return [...Value.Errors(ModelDeploymentStatusSchema, status)].slice(0, 3).map((e) => `${e.path}: ${e.message}`);
}

describe("the summary a sidecar answers is read up to a cap", () => {
  let server: Server;
  let base: string;
  let written = 0;
  const chunk = Buffer.alloc(64 * 1024, "a");
  const endless = (res: ServerResponse) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.write('{"format":"');
    const pump = () => {
      while (!res.destroyed && written < 256 * 1024 * 1024) {
        written += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", pump);
      }
      res.end();
    };
    pump();
  };
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === "/declared") {
        res.writeHead(200, { "content-type": "application/json", "content-length": String(DEFAULT_MAX_SUMMARY_BYTES + 1) });
        res.write("{");
      } else if (req.url === "/endless") endless(res);
      else if (req.url === "/good") res.end(JSON.stringify(summaryOf("shop-serving-a", [windowOf(shopSchema, calmRows(60), calmRows(50))])));
      else res.end("not json");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it("refuses a declared Content-Length above 8 MiB before reading", async () => {
    const s = await scrapeSidecar("shop-serving-a", `${base}/declared`, 3000);
    expect(s).toEqual({ pod: "shop-serving-a", error: `GET ${base}/declared: summary exceeds the limit of 8388608 bytes; the rest was not read` });
  });

  it("cuts an endless body at the cap, without waiting for the timeout or holding more than the cap", async () => {
    const started = Date.now();
    const s = await scrapeSidecar("shop-serving-a", `${base}/endless`, 10_000);
    expect("error" in s && s.error).toBe(`GET ${base}/endless: summary exceeds the limit of 8388608 bytes; the rest was not read`);
    expect(Date.now() - started).toBeLessThan(8000);
    // The connection was dropped: the server could not push the 256 MiB it meant to.
    await new Promise((r) => setTimeout(r, 200));
    expect(written).toBeLessThan(64 * 1024 * 1024);
  });

  it("takes the cap as an option, and says when the answer is not JSON", async () => {
    expect(await scrapeSidecar("a", `${base}/good`, 3000)).toHaveProperty("summary");
    expect(await scrapeSidecar("a", `${base}/good`, 3000, 1024)).toEqual({
      pod: "a",
      error: `GET ${base}/good: summary exceeds the limit of 1024 bytes; the rest was not read`,
    });
    expect(await scrapeSidecar("a", `${base}/junk`, 3000)).toEqual({ pod: "a", error: `GET ${base}/junk: answer is not JSON` });
  });
});

describe("a bad pod is dropped, the others make status", () => {
  let server: Server;
  let base: string;
  const good = (pod: string, rows: number) => summaryOf(pod, [windowOf(shopSchema, calmRows(60), calmRows(rows))]);
  const answers: Record<string, unknown> = {
    "/a": good("shop-serving-a", 50),
    "/b": { ...good("shop-serving-b", 40), windows: [{ ...good("shop-serving-b", 40).windows[0], rows: -1 }] },
    "/c": good("shop-serving-c", 30),
    "/d": { ...good("shop-serving-d", 20), model: "payments" },
    "/e": summaryOf("shop-serving-e", [windowOf([{ name: "size", type: "categorical" }], [{ size: "s" }], [{ size: "xl" }])]),
  };
  beforeAll(async () => {
    server = createServer((req, res) => res.end(JSON.stringify(answers[req.url ?? ""])));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  const scrapeAll = (pods: string[]) => Promise.all(pods.map((p) => scrapeSidecar(`shop-serving-${p}`, `${base}/${p}`, 3000)));

  it("merges the good pods' windows; the malformed, foreign and conflicting ones are errors naming the pod and why", async () => {
    const scrapes = await scrapeAll(["a", "b", "c", "d", "e"]);
    const b = scrapes[1] as Extract<PodScrape, { error: string }>;
    expect(b).toEqual({ pod: "shop-serving-b", error: `GET ${base}/b: summary windows.0.rows: Expected integer to be greater or equal to 0` });
    const status = monitoringStatus(md(shopSchema), scrapes, NOW);
    // a (50 rows) and c (30): d serves another model, e types a feature differently than a.
    expect(status.lastMetrics).toMatchObject({ samples: 80, driftShare: 0, verdict: "Healthy" });
    expect(crdErrors(status)).toEqual([]);
  });

  it("with every pod bad, both conditions say which pod failed and why", async () => {
    const status = monitoringStatus(md(shopSchema), await scrapeAll(["b", "d"]), NOW);
    const drift = status.conditions!.find((c) => c.type === "DriftDetected")!;
    expect(drift).toMatchObject({ status: "Unknown", reason: "InsufficientData" });
    expect(drift.message).toBe(
      `no sidecar answered: shop-serving-b: GET ${base}/b: summary windows.0.rows: Expected integer to be greater or equal to 0; shop-serving-d: summary is of model "payments", not shop`,
    );
  });
});

describe("status stays within the CRD's bounds", () => {
  // 300 features of 128 characters (the longest name the CRD allows), every one drifted.
  const names = Array.from({ length: 300 }, (_, i) => `f${String(i).padStart(3, "0")}_${"x".repeat(123)}`);
  const schema: FeatureSchema[] = names.map((name) => ({ name, type: "numeric" }));
  const rows = (shift: number) => Array.from({ length: 60 }, (_, r) => Object.fromEntries(names.map((n) => [n, (r % 30) + shift])));

  it("names as many drifted features as fit, then '… and N more'; driftedFeatures holds at most 256", () => {
    const status = monitoringStatus(md(schema), [{ pod: "a", summary: summaryOf("a", [windowOf(schema, rows(0), rows(1000))]) }], NOW);
    expect(crdErrors(status)).toEqual([]);
    const drift = status.conditions!.find((c) => c.type === "DriftDetected")!;
    expect(drift).toMatchObject({ status: "True", reason: "DriftAboveThreshold" });
    expect(drift.message.length).toBeLessThanOrEqual(MAX_CONDITION_MESSAGE_LENGTH);
    // The labels' note at the end survives the cut.
    expect(drift.message).toMatch(
      /^300 of 300 features drifted .*f000_x+: ks p-value .*; … and \d+ more; not a violation by itself: decided by labels \(60 labelled rows ≥ 50\)$/,
    );
    const shown = drift.message.match(/f\d{3}_x+: ks/g)!.length;
    expect(drift.message).toContain(`; … and ${300 - shown} more;`);
    expect(status.lastMetrics!.driftedFeatures).toHaveLength(256);
    const degraded = status.conditions!.find((c) => c.type === "Degraded")!;
    expect(degraded.message.length).toBeLessThanOrEqual(MAX_CONDITION_MESSAGE_LENGTH);
  });

  it("lists as many failing pods as fit", () => {
    const scrapes: PodScrape[] = Array.from({ length: 500 }, (_, i) => ({
      pod: `shop-serving-${i}`,
      error: `GET http://10.0.${i >> 8}.${i & 255}:8080/v1/monitoring/summary: ${"connection refused ".repeat(20)}`,
    }));
    const status = monitoringStatus(md(shopSchema), scrapes, NOW);
    expect(crdErrors(status)).toEqual([]);
    const message = status.conditions!.find((c) => c.type === "Degraded")!.message;
    expect(message.length).toBeLessThanOrEqual(MAX_CONDITION_MESSAGE_LENGTH);
    expect(message).toMatch(/^no sidecar answered: shop-serving-0: GET .*…; shop-serving-1: .*; … and \d+ more$/);
  });
});
