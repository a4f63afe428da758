// The reference profile stored in metadata.json: what the sidecar measures live traffic against.
import { calibrateDrift } from "../monitoring/calibration.js";
import { DatasetProfile } from "../monitoring/dataset-profile.js";
import { PREDICTION_COLUMN, type ReferenceProfileJSON } from "../monitoring/summary.js";

export interface ReferenceColumn {
  name: string;
  type: "numeric" | "categorical";
  values: readonly unknown[];
}

/**
 * Profiles the training rows' raw feature values and the model's predictions on them, with each profile's
 * no-drift calibration over the window sizes monitoring uses (so the sidecar need not compute it).
 */
export function buildReferenceProfile(
  features: readonly ReferenceColumn[],
  prediction: { task: "classification" | "regression"; values: readonly (string | number)[] },
): ReferenceProfileJSON {
  const profile = new DatasetProfile(features.map((f) => ({ name: f.name, type: f.type })));
  const rows = features[0]?.values.length ?? 0;
  for (let r = 0; r < rows; r++) {
    const row: Record<string, unknown> = {};
    for (const f of features) row[f.name] = f.values[r];
    profile.addRow(row);
  }
  const predictions = new DatasetProfile([{ name: PREDICTION_COLUMN, type: prediction.task === "classification" ? "categorical" : "numeric" }]);
  for (const v of prediction.values) predictions.addRow({ [PREDICTION_COLUMN]: v });
  return {
    features: profile.toJSON(),
    predictions: predictions.toJSON(),
    calibration: { features: calibrateDrift(profile).toJSON(), predictions: calibrateDrift(predictions).toJSON() },
  };
}
