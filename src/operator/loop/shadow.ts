// The shadow candidate's objects and mirror control. The shadow Deployment runs the serving pods' template pinned
// to the candidate, under labels the user Service does not select; its NetworkPolicy admits the serving pods (the
// mirrored requests) to the serving port and the operator alone to the monitoring port. The operator tells every
// ready serving sidecar, on its monitoring port, where to mirror (PUT /v1/mirror, renewed every step: the sidecars
// stop by themselves at expiresAt) and stops it (DELETE) when the decision is made. While a promotion is observed
// the same Deployment runs the previous version instead (the reverse shadow), mirrored to the same way. When the loop leaves
// Shadowing the Deployment is scaled to 0, not deleted: the operator holds no delete permission on Deployments,
// and the garbage collector deletes both objects with the ModelDeployment.
import type { V1Deployment, V1NetworkPolicy, V1Pod, V1PodSpec } from "@kubernetes/client-node";
import { SIDECAR_PATHS, type ResolvedModelDeployment } from "../../api/index.js";
import { serverSideApply } from "../../kube/apply.js";
import type { KubeClient, KubeObject } from "../../kube/client.js";
import type { Logger } from "pino";
import { isReadyPod, readyServingPods } from "../monitoring/reconciler.js";
import { controlledBy, describeController } from "../ownership.js";
import { DEPLOYMENTS, NETWORK_POLICIES } from "../resources.js";
import {
  ANNOTATION_APPLIED_HASH,
  SIDECAR_MONITORING_PORT,
  metadataFor,
  monitoringIngress,
  podTemplate,
  stampAppliedHash,
  selectorLabels,
  type DesiredDeploymentOptions,
} from "../serving/desired-state.js";

/** How long a mirror configuration lives in a sidecar without being renewed. */
export const MIRROR_TTL_MS = 2 * 60_000;
/** A sidecar slower than this to accept or drop a mirror configuration is reported and retried next step. */
export const MIRROR_REQUEST_TIMEOUT_MS = 3000;

export function shadowNames(mdName: string): { deployment: string; networkPolicy: string } {
  return { deployment: `${mdName}-shadow`, networkPolicy: `${mdName}-shadow` };
}

/** The shadow Deployment: the serving pods' template (image, resources, security context) serving `version`. */
export function desiredShadowDeployment(md: ResolvedModelDeployment, version: string, replicas: number, options: DesiredDeploymentOptions): V1Deployment {
  const name = md.metadata.name!;
  return stampAppliedHash<V1Deployment>({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadataFor(md, shadowNames(name).deployment, "shadow"),
    spec: {
      replicas,
      revisionHistoryLimit: 1,
      selector: { matchLabels: selectorLabels(name, "shadow") },
      template: podTemplate(md, options, { component: "shadow", version }),
    },
  });
}

/** Who may reach the shadow pods: the serving pods (mirrored requests and feedback) and the operator (monitoring). */
export function desiredShadowNetworkPolicy(md: ResolvedModelDeployment, options: { operatorNamespace?: string }): V1NetworkPolicy {
  const name = md.metadata.name!;
  // `from` as the API spells it (the client's model names it `_from`; the body is sent as written).
  const fromServing = [{ from: [{ podSelector: { matchLabels: selectorLabels(name, "serving") } }], ports: [{ port: md.spec.serving.port, protocol: "TCP" }] }];
  return stampAppliedHash<V1NetworkPolicy>({
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: metadataFor(md, shadowNames(name).networkPolicy, "shadow"),
    spec: {
      podSelector: { matchLabels: selectorLabels(name, "shadow") },
      policyTypes: ["Ingress"],
      ingress: [...fromServing, ...monitoringIngress(options)],
    },
  });
}

/** The version a pod spec's server container pins (`--version`). */
function pinnedVersionOfPodSpec(spec: V1PodSpec | undefined): string | undefined {
  const args = spec?.containers?.find((c) => c.name === "server")?.args ?? [];
  const at = args.indexOf("--version");
  return at >= 0 ? args[at + 1] : undefined;
}

/** The version a Deployment's server container pins (`--version`). */
export function pinnedVersionOf(dep: V1Deployment | undefined): string | undefined {
  return pinnedVersionOfPodSpec(dep?.spec?.template?.spec);
}

/** The ModelDeployment's shadow pods that can take mirrored requests, by name. */
export function readyShadowPods(pods: readonly (V1Pod & KubeObject)[], md: ResolvedModelDeployment): (V1Pod & KubeObject)[] {
  const selector = Object.entries(selectorLabels(md.metadata.name!, "shadow"));
  return pods
    .filter((p) => p.metadata?.namespace === md.metadata.namespace && selector.every(([k, v]) => p.metadata?.labels?.[k] === v) && isReadyPod(p))
    .sort((a, b) => (a.metadata!.name! < b.metadata!.name! ? -1 : 1));
}

const hostForUrl = (ip: string) => (ip.includes(":") ? `[${ip}]` : ip);

/**
 * The serving ports of the ready shadow pods whose server pins `version` (at most 16, the sidecars' limit). Only
 * that version: when the shadow switches from a candidate to the previous version, a candidate pod still Ready
 * would otherwise answer for the other model and corrupt the pairs.
 */
export function mirrorTargets(pods: readonly (V1Pod & KubeObject)[], md: ResolvedModelDeployment, version: string): string[] {
  return readyShadowPods(pods, md)
    .filter((p) => pinnedVersionOfPodSpec(p.spec) === version)
    .slice(0, 16)
    .map((p) => `http://${hostForUrl(p.status!.podIP!)}:${md.spec.serving.port}`);
}

export interface ShadowControlOptions {
  client: KubeClient;
  defaultImage: string;
  operatorNamespace?: string;
  log: Logger;
  now: Date;
}

/** The PUT /v1/mirror body (the sidecar contract of SIDECAR_PATHS.mirror). */
export interface MirrorConfig {
  version: string;
  targets: string[];
  sampleRate: number;
  expiresAt: string;
}

/**
 * Makes the shadow exist (shadow set) or not run (undefined) and returns a line for the loop's message: how many
 * shadow pods are ready and what the serving pods answered to the mirror configuration.
 */
export async function reconcileShadow(
  md: ResolvedModelDeployment,
  shadow: { version: string; replicas: number; sampleRate: number } | undefined,
  existing: V1Deployment | undefined,
  pods: readonly (V1Pod & KubeObject)[],
  o: ShadowControlOptions,
): Promise<{ readyPods: number; mirror?: string } | undefined> {
  const names = shadowNames(md.metadata.name!);
  if (existing && !controlledBy(existing as KubeObject, md as KubeObject))
    return {
      readyPods: 0,
      mirror: `Deployment ${names.deployment} exists and is ${describeController(existing as KubeObject, md.metadata.name!)}: no shadow runs`,
    };
  const serving = readyServingPods(pods, md);
  if (!shadow) {
    if (!existing || (existing.spec?.replicas ?? 0) === 0) return undefined;
    // The decision is made: the serving pods stop mirroring first, then the shadow pods go.
    await Promise.all(serving.map((p) => mirrorRequest(p, "DELETE", undefined, o)));
    await serverSideApply(o.client, DEPLOYMENTS, desiredShadowDeployment(md, pinnedVersionOf(existing) ?? "unknown", 0, o));
    o.log.info({ deployment: names.deployment }, "shadow stopped: scaled to 0");
    return undefined;
  }
  const desired = desiredShadowDeployment(md, shadow.version, shadow.replicas, o);
  if (existing?.metadata?.annotations?.[ANNOTATION_APPLIED_HASH] !== desired.metadata!.annotations![ANNOTATION_APPLIED_HASH]) {
    // The policy first, so no shadow pod ever runs uncovered.
    await serverSideApply(o.client, NETWORK_POLICIES, desiredShadowNetworkPolicy(md, o));
    await serverSideApply(o.client, DEPLOYMENTS, desired);
    o.log.info({ deployment: names.deployment, version: shadow.version, replicas: shadow.replicas }, "shadow applied");
  }
  const targets = mirrorTargets(pods, md, shadow.version);
  if (targets.length === 0) return { readyPods: 0, mirror: "waiting for a ready shadow pod before mirroring" };
  const config: MirrorConfig = {
    version: shadow.version,
    targets,
    sampleRate: shadow.sampleRate,
    expiresAt: new Date(o.now.getTime() + MIRROR_TTL_MS).toISOString(),
  };
  const answers = await Promise.all(serving.map((p) => mirrorRequest(p, "PUT", config, o)));
  const refused = answers.filter((a): a is string => a !== undefined);
  const mirror = `${serving.length - refused.length} of ${serving.length} serving pods mirror to ${targets.length} shadow pod${targets.length > 1 ? "s" : ""}${refused.length ? ` (${refused.join("; ")})` : ""}`;
  return { readyPods: targets.length, mirror: mirror.slice(0, 512) };
}

/** PUT or DELETE /v1/mirror on one serving pod's monitoring port; the refusal, if any. */
async function mirrorRequest(pod: V1Pod, method: "PUT" | "DELETE", config: MirrorConfig | undefined, o: ShadowControlOptions): Promise<string | undefined> {
  const url = `http://${hostForUrl(pod.status!.podIP!)}:${SIDECAR_MONITORING_PORT}${SIDECAR_PATHS.mirror}`;
  try {
    const res = await fetch(url, {
      method,
      signal: AbortSignal.timeout(MIRROR_REQUEST_TIMEOUT_MS),
      ...(config ? { headers: { "content-type": "application/json" }, body: JSON.stringify(config) } : {}),
    });
    const text = (await res.text()).slice(0, 200);
    if (res.ok) return undefined;
    const refusal = `${pod.metadata?.name}: ${method} ${SIDECAR_PATHS.mirror} answered ${res.status} ${text}`.trim();
    o.log.warn({ pod: pod.metadata?.name, status: res.status }, `mirror ${method} refused`);
    return refusal;
  } catch (err) {
    const why = err instanceof Error && err.name === "TimeoutError" ? `no answer within ${MIRROR_REQUEST_TIMEOUT_MS} ms` : String(err);
    o.log.warn({ pod: pod.metadata?.name, err: why }, `mirror ${method} failed`);
    return `${pod.metadata?.name}: ${method} ${SIDECAR_PATHS.mirror}: ${why}`;
  }
}
