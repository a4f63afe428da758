// REST paths of the built-in resources Ballast's clients read and write (resourcePath() turns them into URLs).
import type { ResourceType } from "./client.js";

const coreV1 = (plural: string, namespaced = true): ResourceType => ({ group: "", version: "v1", plural, namespaced });

export const NODES = coreV1("nodes", false);
export const PODS = coreV1("pods");
export const SERVICES = coreV1("services");
export const CONFIG_MAPS = coreV1("configmaps");
export const SECRETS = coreV1("secrets");
export const SERVICE_ACCOUNTS = coreV1("serviceaccounts");
export const PERSISTENT_VOLUME_CLAIMS = coreV1("persistentvolumeclaims");
export const PERSISTENT_VOLUMES = coreV1("persistentvolumes", false);
export const STORAGE_CLASSES: ResourceType = { group: "storage.k8s.io", version: "v1", plural: "storageclasses", namespaced: false };
