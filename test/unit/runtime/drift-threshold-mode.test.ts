// The sidecar's drift settings as the operator writes them: calibrated thresholds by default, from the
// reference's stored calibration, or computed at start-up for a version trained before calibration existed.
import { describe, expect, it } from "vitest";
import { DatasetProfile, DriftCalibration, calibrateDrift, compare } from "../../../src/monitoring/index.js";
import { PREDICTION_COLUMN, type ReferenceProfileJSON } from "../../../src/monitoring/summary.js";
import type { ModelMetadata } from "../../../src/runtime/metadata.js";
import { MonitoringConfigError, driftOptions, loadReference } from "../../../src/runtime/monitoring-config.js";
import { weather } from "../monitoring/real-data.js";

const schema = [
  { name: "temp_max", type: "numeric" as const },
  { name: "wind", type: "numeric" as const },
  { name: "weather", type: "categorical" as const },
];
const seattle = weather("Seattle");
const newYork = weather("New York");

function referenceOf(rows: Record<string, unknown>[], calibrated: boolean): ReferenceProfileJSON {
  const features = DatasetProfile.fromRows(schema, rows);
  const predictions = DatasetProfile.fromRows(
    [{ name: PREDICTION_COLUMN, type: "categorical" }],
    rows.map((r) => ({ [PREDICTION_COLUMN]: r.weather })),
  );
  return {
    features: features.toJSON(),
    predictions: predictions.toJSON(),
    ...(calibrated ? { calibration: { features: calibrateDrift(features).toJSON(), predictions: calibrateDrift(predictions).toJSON() } } : {}),
  };
}

const meta = (reference: ReferenceProfileJSON) =>
  ({
    task: "classification",
    label: "weather",
    features: schema.map((f) => ({ name: f.name, type: f.type })),
    referenceProfile: reference,
  }) as unknown as ModelMetadata;

describe("drift threshold mode in the sidecar's monitoring config", () => {
  const trained = referenceOf(seattle, true);

  it("defaults to calibrated, passes the correction, and keeps a threshold without a mode as fixed (configs written before modes)", () => {
    expect(driftOptions(undefined, meta(trained))).toMatchObject({ method: "auto", thresholdMode: "calibrated" });
    expect(driftOptions({ drift: { method: "psi", threshold: 0.2 } }, meta(trained))).toMatchObject({ thresholdMode: "fixed", thresholds: { psi: 0.2 } });
    expect(driftOptions({ drift: { method: "ks", thresholdMode: "fixed", correction: "bonferroni" } }, meta(trained))).toMatchObject({
      correction: "bonferroni",
    });
    expect(() => driftOptions({ drift: { method: "psi", thresholdMode: "calibrated", threshold: 0.2 } }, meta(trained))).toThrow(MonitoringConfigError);
    expect(() => driftOptions({ drift: { method: "psi", thresholdMode: "calibrated", threshold: 0.2 } }, meta(trained))).toThrow(
      /drift\.threshold is a fixed threshold: it needs drift\.thresholdMode fixed/,
    );
  });

  it("uses the calibration ballast train stored, and calibrates a version trained before calibration at start-up", async () => {
    expect(await loadReference(undefined, meta(trained), {})).toBe(trained);
    const old = referenceOf(seattle, false);
    const loaded = await loadReference(undefined, meta(old), {});
    expect(loaded.calibration).toEqual(trained.calibration);
    // Fixed mode needs none.
    expect((await loadReference({ drift: { thresholdMode: "fixed" } }, meta(old), {})).calibration).toBeUndefined();
  });

  it("judges a Seattle window as no drift and a New York window as drift with the stored quantiles", () => {
    const reference = DatasetProfile.fromJSON(trained.features);
    const options = { ...driftOptions(undefined, meta(trained)), calibration: DriftCalibration.fromJSON(trained.calibration!.features) };
    const window = (rows: Record<string, unknown>[]) => DatasetProfile.fromRows(schema, rows);
    const calm = compare(reference, window(seattle.filter((_, i) => i % 7 === 3).slice(0, 200)), options);
    expect(calm.drift).toBe(false);
    expect(calm.features.every((f) => f.thresholdMode === "calibrated")).toBe(true);
    expect(compare(reference, window(newYork.slice(0, 200)), options).drift).toBe(true);
  });
});
