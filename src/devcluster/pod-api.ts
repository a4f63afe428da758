// What a local node reads from the API server to start a pod: ConfigMaps, Secrets, ServiceAccount tokens.
import type { V1ConfigMap, V1Pod, V1Secret } from "@kubernetes/client-node";
import { KubeApiError, resourcePath, type KubeClient } from "../kube/client.js";
import { CONFIG_MAPS, SECRETS, SERVICE_ACCOUNTS } from "../kube/resources.js";

export interface PodApi {
  readConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  readSecret(namespace: string, name: string): Promise<V1Secret | undefined>;
  requestToken(pod: V1Pod, serviceAccount: string, audiences: string[], expirationSeconds: number): Promise<string>;
}

async function undefinedIfNotFound<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if (err instanceof KubeApiError && err.notFound) return undefined;
    throw err;
  }
}

export function podApi(client: KubeClient): PodApi {
  return {
    readConfigMap: (namespace, name) => undefinedIfNotFound(client.get<V1ConfigMap>(resourcePath(CONFIG_MAPS, namespace, name))),
    readSecret: (namespace, name) => undefinedIfNotFound(client.get<V1Secret>(resourcePath(SECRETS, namespace, name))),
    async requestToken(pod, serviceAccount, audiences, expirationSeconds) {
      // Bound to the pod, as the kubelet does, so the token dies with it.
      const res = await client.create<{ status?: { token?: string } }>(resourcePath(SERVICE_ACCOUNTS, pod.metadata!.namespace!, serviceAccount, "token"), {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {
          audiences,
          expirationSeconds,
          boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata!.name!, uid: pod.metadata!.uid! },
        },
      });
      const token = res.status?.token;
      if (!token) throw new Error(`TokenRequest for ${pod.metadata!.namespace}/${serviceAccount} returned no token`);
      return token;
    },
  };
}
