// Which ground-truth labels a model version takes as feedback. A label becomes a window metric and a training row,
// so one absurd value must not reach either: 1e308 made rmse Infinity and would have been trained on.
import { isMissing } from "./features.js";
import type { ModelMetadata } from "./metadata.js";
import { Refusal } from "./refusal.js";
import type { FeedbackLabel } from "./wire/feedback.js";

/**
 * Regression labels must lie within the training target's mean ± this many standard deviations. Generous enough
 * for a real regime shift (the reason to retrain), tight enough that one label adds at most 100² to the squared
 * error of the standardised target training minimises, and that sums of squares over any window stay finite.
 */
const MAX_LABEL_DEVIATIONS = 100;
/** Without the target's statistics (metadata not written by `ballast train`): an absolute bound with the same purpose. */
const MAX_ABSOLUTE_LABEL = 1e12;

const MAX_CLASSES_IN_MESSAGE = 20;

function shown(value: FeedbackLabel): string {
  const text = JSON.stringify(value);
  return text.length <= 80 ? text : `${text.slice(0, 79)}…`;
}

/** The interval regression feedback must fall in, and how it was derived (for the error message and docs). */
function regressionLabelRange(meta: ModelMetadata): { min: number; max: number; rule: string } {
  if (!meta.target) return { min: -MAX_ABSOLUTE_LABEL, max: MAX_ABSOLUTE_LABEL, rule: `at most ${MAX_ABSOLUTE_LABEL} in magnitude` };
  const { mean, std } = meta.target;
  return {
    min: mean - MAX_LABEL_DEVIATIONS * std,
    max: mean + MAX_LABEL_DEVIATIONS * std,
    rule: `the training mean ± ${MAX_LABEL_DEVIATIONS} standard deviations`,
  };
}

/** A function that returns the label as stored (a class name, or a finite number in range), or throws Refusal("invalid") naming `where`. */
export function labelChecker(meta: ModelMetadata): (value: FeedbackLabel, where: string) => string | number {
  const missing = (value: FeedbackLabel, where: string): void => {
    if (isMissing(value)) throw new Refusal("invalid", `${where}: is empty; give the ground truth`);
  };
  if (meta.task === "regression") {
    const range = regressionLabelRange(meta);
    return (value, where) => {
      missing(value, where);
      const n = typeof value === "number" ? value : typeof value === "string" ? Number(value.trim()) : NaN;
      if (!Number.isFinite(n)) throw new Refusal("invalid", `${where}: ${shown(value)} is not a number; this model predicts a number`);
      if (!(n >= range.min && n <= range.max)) {
        throw new Refusal(
          "invalid",
          `${where}: ${shown(value)} is outside the labels this model takes, [${range.min}, ${range.max}] (${range.rule}); check the units`,
        );
      }
      return n;
    };
  }
  const classes = new Set(meta.classes ?? []);
  const listed = [...classes].slice(0, MAX_CLASSES_IN_MESSAGE).join(", ") + (classes.size > MAX_CLASSES_IN_MESSAGE ? `, … (${classes.size} classes)` : "");
  return (value, where) => {
    missing(value, where);
    const c = String(value);
    if (!classes.has(c)) throw new Refusal("invalid", `${where}: ${shown(value)} is not one of the model's classes (${listed})`);
    return c;
  };
}
