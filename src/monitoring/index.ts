// Ballast's monitoring engine: profiles, drift statistics, performance metrics, windows and policy.
// Pure computation, no I/O; nothing else of Ballast's is imported here.
export * from "./schema.js";
export * from "./kll-sketch.js";
export * from "./numeric-profile.js";
export * from "./categorical-profile.js";
export * from "./dataset-profile.js";
export { profileColumnsInParallel, type ParallelProfileOptions } from "./parallel-profile.js";
export * from "./compare.js";
export * from "./calibration.js";
export * from "./seeded-random.js";
export * from "./multiple-testing.js";
export { chiSquaredContingency, chiSquaredSf, type ChiSquaredResult } from "./stats/chi-squared.js";
export { jensenShannonDistance, populationStabilityIndex } from "./stats/divergence.js";
export { binWeights, linspace, sturgesEdges } from "./stats/histogram.js";
export { kolmogorovSf, smirnovSf } from "./stats/kolmogorov.js";
export { KS_MAX_AUTO_N, ksPValue, ksStatistic, ksTwoSample, sortedPoints, type KsMethod, type KsResult } from "./stats/ks.js";
export { normedWasserstein, wassersteinDistance } from "./stats/wasserstein.js";
export * from "./performance.js";
export * from "./seed-metrics.js";
export * from "./windows.js";
export * from "./policy.js";
export * from "./report.js";
export * from "./multivariate-drift.js";
