// The seed document's two health metrics, exactly as defined there.

/**
 * Stability = 1 − std(metric) / mean(metric) over the last `k` windows (population std, ddof 0).
 * 1 means the metric did not move; it drops as the metric fluctuates, and goes below 0 when the spread
 * exceeds the mean. Null (not NaN) when no finite values remain, or when the mean is 0 but the values vary;
 * a metric that is constantly 0 is perfectly stable (1). Non-finite and null entries are skipped.
 */
export function stability(values: readonly (number | null)[], k = values.length): number | null {
  const recent = values.slice(Math.max(0, values.length - k)).filter((v): v is number => v !== null && Number.isFinite(v));
  if (recent.length === 0) return null;
  const mean = recent.reduce((a, b) => a + b, 0) / recent.length;
  const std = Math.sqrt(recent.reduce((a, b) => a + (b - mean) ** 2, 0) / recent.length);
  if (std === 0) return 1;
  if (mean === 0) return null;
  return 1 - std / Math.abs(mean);
}

/**
 * Robustness = 1 − failed runs / total runs. A run is one served request (the sidecar counts responses
 * with status ≥ 500, timeouts and connection errors as failures) or one retraining Job attempt (a failed
 * pod). Null when there were no runs.
 */
export function robustness(failures: number, runs: number): number | null {
  if (!(runs > 0)) return null;
  const failed = Math.min(Math.max(failures, 0), runs);
  return 1 - failed / runs;
}

/** Mergeable run counter for robustness. */
export class RunCounter {
  runs = 0;
  failures = 0;

  record(failed: boolean): void {
    this.runs++;
    if (failed) this.failures++;
  }

  merge(other: RunCounter): RunCounter {
    const out = new RunCounter();
    out.runs = this.runs + other.runs;
    out.failures = this.failures + other.failures;
    return out;
  }

  get robustness(): number | null {
    return robustness(this.failures, this.runs);
  }

  toJSON(): { runs: number; failures: number } {
    return { runs: this.runs, failures: this.failures };
  }

  static fromJSON(json: { runs: number; failures: number }): RunCounter {
    if (!Number.isInteger(json.runs) || !Number.isInteger(json.failures) || json.runs < 0 || json.failures < 0 || json.failures > json.runs) {
      throw new RangeError(`run counter {runs: ${json.runs}, failures: ${json.failures}} is malformed`);
    }
    const out = new RunCounter();
    out.runs = json.runs;
    out.failures = json.failures;
    return out;
  }
}
