// status.shadow from a scrape: the serving pods' shadow blocks merged and judged against spec.promotion, every
// scrape while the serving pods mirror to a candidate — or, while a promotion is observed, to the previous version
// (the reverse shadow, role previous). The loop reads the verdict; this module only reports it.
import { isoSeconds, type ModelDeploymentStatus, type ResolvedModelDeployment, type ShadowComparison } from "../../api/index.js";
import { compareReverseShadow, compareShadow } from "../../monitoring/shadow-comparison.js";
import { mergeShadowSummaries } from "../../monitoring/shadow-summary.js";
import type { SidecarSummary } from "../../monitoring/summary.js";
import { servingGroup, type PodScrape } from "./health.js";

/** Failed / served requests of the serving pods in the windows that ended after mirroring began. */
export function servingErrorRateSince(group: readonly SidecarSummary[], since: string): number | undefined {
  let requests = 0;
  let failed = 0;
  for (const s of group)
    for (const w of s.windows)
      if (w.end >= since) {
        requests += w.requests;
        failed += w.failedRequests;
      }
  return requests > 0 ? failed / requests : undefined;
}

/**
 * `next` (the status this scrape computed) with status.shadow replaced: the comparison of the merged shadow
 * blocks of the serving version's pods, or none when no serving pod mirrors. Without any answer, kept as it was.
 */
export function withShadowStatus(md: ResolvedModelDeployment, next: ModelDeploymentStatus, scrapes: readonly PodScrape[], now: Date): ModelDeploymentStatus {
  const answered = scrapes.flatMap((s) => ("summary" in s ? [s.summary] : []));
  if (answered.length === 0) return next;
  const group = servingGroup(answered);
  const merged = mergeShadowSummaries(group.flatMap((s) => (s.shadow ? [s.shadow] : [])));
  const { shadow: _dropped, ...rest } = next;
  // A sidecar's clock string that does not parse cannot be a status time: no comparison rather than a rejected write.
  if (!merged || !Number.isFinite(Date.parse(merged.since))) return rest;
  const p = md.spec.promotion;
  if (isReverseShadow(md, merged.version)) {
    // The loop records an estimate that called the promoted version worse; from then on the direction is fixed in advance.
    const directional = md.status?.observation?.estimateWarning !== undefined;
    const reverse = compareReverseShadow(merged, p.shadow, directional);
    return { ...rest, shadow: { role: "previous", ...reverse, since: isoSeconds(new Date(reverse.since)), updateTime: isoSeconds(now) } };
  }
  const result = compareShadow(
    merged,
    {
      minPairs: p.shadow.minPairs,
      minLabelledPairs: p.shadow.minLabelledPairs,
      confidence: p.shadow.confidence,
      minImprovement: p.minImprovement,
      maxErrorRateRise: p.maxLiveRegression,
      maxLatencyRatio: p.maxLatencyRatio,
    },
    servingErrorRateSince(group, merged.since),
  );
  const shadow: ShadowComparison = { role: "candidate", ...result, since: isoSeconds(new Date(result.since)), updateTime: isoSeconds(now) };
  return { ...rest, shadow };
}

/** The serving pods mirror to the version a promotion under observation replaced. */
export function isReverseShadow(md: ResolvedModelDeployment, mirroredVersion: string): boolean {
  const s = md.status;
  return s?.loop?.phase === "Observing" && s.observation?.previousVersion === mirroredVersion && s.observation.version === s.servingVersion;
}
