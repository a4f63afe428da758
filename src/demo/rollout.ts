// When traffic sent now reaches only the version just rolled out: a terminating pod takes no new connections (the
// Service routes around it), so the pods that count are the others — all of them must run the new version.
import type { V1Pod } from "@kubernetes/client-node";

export function onlyVersionServes(pods: readonly V1Pod[], version: string): boolean {
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
  return (
    live.length > 0 &&
    live.every((p) => {
      const args = p.spec?.containers?.find((c) => c.name === "server")?.args ?? [];
      const at = args.indexOf("--version");
      return at >= 0 && args[at + 1] === version;
    })
  );
}
