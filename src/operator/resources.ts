// The REST resources the operator reads and writes.
import { GROUP, PLURAL, VERSION } from "../api/index.js";
import type { ResourceType } from "../kube/client.js";

export const MODEL_DEPLOYMENTS: ResourceType = { group: GROUP, version: VERSION, plural: PLURAL, namespaced: true };
export const DEPLOYMENTS: ResourceType = { group: "apps", version: "v1", plural: "deployments", namespaced: true };
export const SERVICES: ResourceType = { group: "", version: "v1", plural: "services", namespaced: true };
export const NETWORK_POLICIES: ResourceType = { group: "networking.k8s.io", version: "v1", plural: "networkpolicies", namespaced: true };
export const CONFIG_MAPS: ResourceType = { group: "", version: "v1", plural: "configmaps", namespaced: true };
export const PERSISTENT_VOLUME_CLAIMS: ResourceType = { group: "", version: "v1", plural: "persistentvolumeclaims", namespaced: true };
export const PODS: ResourceType = { group: "", version: "v1", plural: "pods", namespaced: true };
export const JOBS: ResourceType = { group: "batch", version: "v1", plural: "jobs", namespaced: true };
