// Public surface of the ModelDeployment API (imports nothing else of Ballast's).
export * from "./v1alpha1.js";
export * from "./conditions.js";
export * from "./defaults.js";
export * from "./duration.js";
export * from "./storage-uri.js";
export * from "./crd.js";
export type { CelRule, Resolved } from "./schema-kit.js";
export * from "./kstatus.js";
export * from "./reference.js";
export * from "./sidecar-paths.js";
export * from "./train-result.js";
