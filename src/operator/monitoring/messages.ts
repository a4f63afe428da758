// Bounds on what the monitoring controller writes into status. The API server refuses a whole status update
// when one field breaks the CRD (a condition message over 32 KiB, driftedFeatures over 256 names of 128
// characters), and the next scrape would build the same update again: one oversized list freezes status for good.
// Lists are cut with "… and N more", so a person still reads how many there were.

/** Longest condition message written (the CRD allows 32768; a message a person reads needs far less). */
export const MAX_CONDITION_MESSAGE_LENGTH = 4096;
/** Longest single item (a feature's drift reason, a pod's scrape error) inside a message. */
export const MAX_MESSAGE_ITEM_LENGTH = 256;
/** status.lastMetrics.driftedFeatures: at most this many names (CRD maxItems)… */
export const MAX_DRIFTED_FEATURES = 256;
/** …of at most this many characters each (CRD maxLength). */
export const MAX_FEATURE_NAME_LENGTH = 128;

/** `text` in at most `max` characters, ending with "…" when cut. */
export function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  let keep = max - 1;
  const last = text.charCodeAt(keep - 1);
  if (last >= 0xd800 && last <= 0xdbff) keep--;
  return `${text.slice(0, keep)}…`;
}

/**
 * Items joined by `separator` in at most `budget` characters: each item clipped to MAX_MESSAGE_ITEM_LENGTH, and
 * when they do not all fit, as many as fit followed by "… and N more".
 */
export function joinWithin(items: readonly string[], budget: number, separator = "; "): string {
  const clipped = items.map((i) => clipText(i, MAX_MESSAGE_ITEM_LENGTH));
  const all = clipped.join(separator);
  if (all.length <= budget) return all;
  const shown: string[] = [];
  let length = 0;
  for (const [i, item] of clipped.entries()) {
    // Room for this item and for the tail that says how many did not fit after it.
    const tail = `${separator}… and ${clipped.length - i - 1} more`;
    const next = length + (shown.length > 0 ? separator.length : 0) + item.length;
    if (next + (i < clipped.length - 1 ? tail.length : 0) > budget) break;
    shown.push(item);
    length = next;
  }
  const rest = clipped.length - shown.length;
  const more = `… and ${rest} more`;
  return shown.length > 0 ? `${shown.join(separator)}${separator}${more}` : more;
}

/** A whole condition message within MAX_CONDITION_MESSAGE_LENGTH (the last guard, after lists were bounded). */
export function boundMessage(message: string, max = MAX_CONDITION_MESSAGE_LENGTH): string {
  return clipText(message, max);
}

/** Feature names as status.lastMetrics.driftedFeatures may hold them: ≤ 256 names, each ≤ 128 characters. */
export function boundFeatureNames(names: readonly string[]): string[] {
  return names.slice(0, MAX_DRIFTED_FEATURES).map((n) => clipText(n, MAX_FEATURE_NAME_LENGTH));
}
