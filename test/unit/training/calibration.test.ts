// Temperature scaling against scipy (test/oracle/generate.py: scipy.optimize.minimize_scalar over the log-loss,
// scipy.special.softmax, a numpy ECE; versions pinned in test/oracle/requirements.txt).
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfidenceEstimate, expectedCalibrationError, temperatureScaled } from "../../../src/monitoring/confidence-estimate.js";
import { calibrateProbabilities, fitTemperature, temperatureLogLoss } from "../../../src/training/calibration.js";

interface TemperatureCase {
  name: string;
  classes: number;
  probabilities: number[];
  labels: number[];
  temperature: number;
  logLoss: number;
  logLossAtOne: number;
  eceBefore: number;
  eceAfter: number;
  calibratedFirstRows: number[];
}

const cases = (JSON.parse(readFileSync(new URL("../../oracle/fixtures/temperature_scaling.json", import.meta.url), "utf8")) as { cases: TemperatureCase[] })
  .cases;

describe("temperature scaling (scipy)", () => {
  it.each(cases.map((c) => [c.name, c] as const))("%s: same temperature, log-loss, ECE and calibrated rows", (_name, c) => {
    const t = fitTemperature(c.probabilities, c.classes, c.labels);
    // Both minimise the same convex loss to 1e-10 in log T: the fits agree far inside 1e-6.
    expect(Math.abs(t - c.temperature) / c.temperature, `T ${t} vs scipy ${c.temperature}`).toBeLessThan(1e-6);
    expect(temperatureLogLoss(c.probabilities, c.classes, c.labels, t)).toBeCloseTo(c.logLoss, 10);
    expect(temperatureLogLoss(c.probabilities, c.classes, c.labels, 1)).toBeCloseTo(c.logLossAtOne, 10);
    const stored = calibrateProbabilities(c.probabilities, c.classes, c.labels);
    expect(stored.method).toBe("temperature");
    expect(stored.rows).toBe(c.labels.length);
    expect(stored.eceBefore).toBeCloseTo(c.eceBefore, 10);
    expect(stored.eceAfter).toBeCloseTo(c.eceAfter, 6);
    for (let r = 0; r < 3; r++) {
      const row = temperatureScaled(c.probabilities.slice(r * c.classes, (r + 1) * c.classes), c.temperature);
      row.forEach((p, k) => expect(p).toBeCloseTo(c.calibratedFirstRows[r * c.classes + k]!, 12));
    }
  });

  it("softens over-confident outputs (T > 1) and sharpens under-confident ones (T < 1), never changing a row's argmax", () => {
    const over = cases.find((c) => c.name.startsWith("three classes, over"))!;
    const under = cases.find((c) => c.name.startsWith("four classes, under"))!;
    expect(fitTemperature(over.probabilities, over.classes, over.labels)).toBeGreaterThan(1.5);
    expect(fitTemperature(under.probabilities, under.classes, under.labels)).toBeLessThan(0.7);
    for (const c of [over, under]) {
      const argmax = (p: ArrayLike<number>) => Array.from(p).indexOf(Math.max(...Array.from(p)));
      for (let r = 0; r < c.labels.length; r++) {
        const row = c.probabilities.slice(r * c.classes, (r + 1) * c.classes);
        expect(argmax(temperatureScaled(row, c.temperature))).toBe(argmax(row));
      }
    }
  });

  it("on calibrated probabilities, the expected accuracy is within sampling noise of the realised accuracy", () => {
    for (const c of cases.filter((x) => x.labels.length >= 400)) {
      const estimate = new ConfidenceEstimate(Array.from({ length: c.classes }, (_, k) => `c${k}`));
      let correct = 0;
      for (let r = 0; r < c.labels.length; r++) {
        const row = temperatureScaled(c.probabilities.slice(r * c.classes, (r + 1) * c.classes), c.temperature);
        estimate.add(row);
        if (Array.from(row).indexOf(Math.max(...row)) === c.labels[r]) correct++;
      }
      const realised = correct / c.labels.length;
      // 3 binomial standard errors of the realised accuracy.
      const se = Math.sqrt((realised * (1 - realised)) / c.labels.length);
      expect(Math.abs(estimate.metrics()!.accuracy - realised), c.name).toBeLessThan(3 * se);
    }
  });

  it("an empty validation set leaves the probabilities as they are, with zero ECE", () => {
    expect(fitTemperature([], 3, [])).toBe(1);
    expect(expectedCalibrationError([], 3, [])).toBe(0);
  });
});
