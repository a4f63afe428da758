// Events for serving pods whose request log spool is full (s3:// stores: the sidecar could not ship its sealed
// segments for long enough to reach spec.model.s3.logSpoolBytes, and now refuses feedback rather than lose it).
// Serving is unaffected, so no condition changes: a Warning per pod, repeated each scrape while it lasts (the
// recorder folds the repeats into one Event's series), and a Normal Event once the pod reports it drained.
import type { EventRecord } from "../../kube/events.js";
import type { PodScrape } from "./health.js";

export const LOG_SPOOL_FULL_REASON = "LogSpoolFull";
export const LOG_SPOOL_DRAINED_REASON = "LogSpoolDrained";

/**
 * The pods whose summary says their spool is full, and the Events for this scrape given the pods full at the last
 * one (`wasFull`). A pod that did not answer keeps its state: a failed scrape proves neither full nor drained.
 */
export function logSpoolEvents(scrapes: readonly PodScrape[], wasFull: ReadonlySet<string>): { full: Set<string>; events: EventRecord[] } {
  const full = new Set<string>();
  const events: EventRecord[] = [];
  for (const s of scrapes) {
    if (!("summary" in s)) {
      if (wasFull.has(s.pod)) full.add(s.pod);
      continue;
    }
    const totals = s.summary.totals;
    if (totals.logSpoolFull !== undefined && totals.logSpoolFull > 0) {
      full.add(s.pod);
      // The note holds no counters, so each scrape's repeat folds into the same Event.
      events.push({
        type: "Warning",
        reason: LOG_SPOOL_FULL_REASON,
        action: "ShipRequestLog",
        note: `serving pod ${s.pod}: its request log spool is full (spec.model.s3.logSpoolBytes) because uploads to the s3:// store keep failing: feedback is refused with 503 and requests go unlogged until they succeed; the sidecar's log-ship-failed warnings say why`,
      });
    } else if (wasFull.has(s.pod)) {
      events.push({
        type: "Normal",
        reason: LOG_SPOOL_DRAINED_REASON,
        action: "ShipRequestLog",
        note: `serving pod ${s.pod}: its request log spool drained to ${totals.logSpoolBytes ?? 0} bytes; feedback is accepted again`,
      });
    }
  }
  return { full, events };
}
