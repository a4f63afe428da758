// A container's environment as the kubelet builds it: env, envFrom, downward-API fieldRefs, $(VAR) expansion.
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { PodApi } from "./pod-api.js";

export class ContainerConfigError extends Error {
  readonly reason = "CreateContainerConfigError";
}

/** The downward API's field paths (the subset the kubelet supports for env). */
export function fieldRefValue(pod: V1Pod, fieldPath: string, podIP: string | undefined, hostIP: string): string {
  const meta = pod.metadata ?? {};
  const keyed = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (keyed) return (keyed[1] === "labels" ? meta.labels : meta.annotations)?.[keyed[2]!] ?? "";
  switch (fieldPath) {
    case "metadata.name":
      return meta.name ?? "";
    case "metadata.namespace":
      return meta.namespace ?? "";
    case "metadata.uid":
      return meta.uid ?? "";
    case "spec.nodeName":
      return pod.spec?.nodeName ?? "";
    case "spec.serviceAccountName":
      return pod.spec?.serviceAccountName ?? "";
    case "status.podIP":
    case "status.podIPs":
      return podIP ?? "";
    case "status.hostIP":
    case "status.hostIPs":
      return hostIP;
    default:
      throw new ContainerConfigError(`unsupported fieldRef ${fieldPath}`);
  }
}

/** $(NAME) becomes the variable's value when defined; $$(NAME) escapes to a literal $(NAME). */
export function expandVars(input: string, vars: Record<string, string>): string {
  return input.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (whole === "$$") return "$";
    return name !== undefined && name in vars ? vars[name]! : whole;
  });
}

const decode = (b64: string) => Buffer.from(b64, "base64").toString("utf8");

export async function containerEnv(
  pod: V1Pod,
  container: V1Container,
  podIP: string | undefined,
  hostIP: string,
  api: PodApi,
): Promise<Record<string, string>> {
  const ns = pod.metadata!.namespace!;
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? "";
    if (from.configMapRef) {
      const cm = await api.readConfigMap(ns, from.configMapRef.name!);
      if (!cm && !from.configMapRef.optional) throw new ContainerConfigError(`configmap "${from.configMapRef.name}" not found`);
      for (const [k, v] of Object.entries(cm?.data ?? {})) env[prefix + k] = v;
    }
    if (from.secretRef) {
      const s = await api.readSecret(ns, from.secretRef.name!);
      if (!s && !from.secretRef.optional) throw new ContainerConfigError(`secret "${from.secretRef.name}" not found`);
      for (const [k, v] of Object.entries(s?.data ?? {})) env[prefix + k] = decode(v);
    }
  }
  for (const e of container.env ?? []) {
    const src = e.valueFrom;
    if (!src) {
      env[e.name] = expandVars(e.value ?? "", env);
    } else if (src.fieldRef) {
      env[e.name] = fieldRefValue(pod, src.fieldRef.fieldPath, podIP, hostIP);
    } else if (src.resourceFieldRef) {
      const [kind, resource] = src.resourceFieldRef.resource.split(".") as ["limits" | "requests", string];
      env[e.name] = String(container.resources?.[kind]?.[resource] ?? "");
    } else if (src.configMapKeyRef) {
      const ref = src.configMapKeyRef;
      const value = (await api.readConfigMap(ns, ref.name!))?.data?.[ref.key];
      if (value === undefined && !ref.optional) throw new ContainerConfigError(`couldn't find key ${ref.key} in ConfigMap ${ns}/${ref.name}`);
      if (value !== undefined) env[e.name] = value;
    } else if (src.secretKeyRef) {
      const ref = src.secretKeyRef;
      const value = (await api.readSecret(ns, ref.name!))?.data?.[ref.key];
      if (value === undefined && !ref.optional) throw new ContainerConfigError(`couldn't find key ${ref.key} in Secret ${ns}/${ref.name}`);
      if (value !== undefined) env[e.name] = decode(value);
    }
  }
  return env;
}
