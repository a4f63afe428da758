// What a local node reads from the API server to start a pod: ConfigMaps, Secrets, ServiceAccount tokens.
import { CoreV1Api, KubeConfig, type V1ConfigMap, type V1Pod, type V1Secret } from "@kubernetes/client-node";

export interface PodApi {
  readConfigMap(namespace: string, name: string): Promise<V1ConfigMap | undefined>;
  readSecret(namespace: string, name: string): Promise<V1Secret | undefined>;
  requestToken(pod: V1Pod, serviceAccount: string, audiences: string[], expirationSeconds: number): Promise<string>;
}

async function undefinedIfNotFound<T>(read: Promise<T>): Promise<T | undefined> {
  try {
    return await read;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

export function podApi(kc: KubeConfig): PodApi {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    readConfigMap: (namespace, name) => undefinedIfNotFound(core.readNamespacedConfigMap({ namespace, name })),
    readSecret: (namespace, name) => undefinedIfNotFound(core.readNamespacedSecret({ namespace, name })),
    async requestToken(pod, serviceAccount, audiences, expirationSeconds) {
      // Bound to the pod, as the kubelet does, so the token dies with it.
      const res = await core.createNamespacedServiceAccountToken({
        namespace: pod.metadata!.namespace!,
        name: serviceAccount,
        body: {
          spec: {
            audiences,
            expirationSeconds,
            boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata!.name!, uid: pod.metadata!.uid! },
          },
        },
      });
      const token = res.status?.token;
      if (!token) throw new Error(`TokenRequest for ${pod.metadata!.namespace}/${serviceAccount} returned no token`);
      return token;
    },
  };
}

