// controller-runtime's metric names, so the dashboards and alerts people already have for Go operators work;
// Ballast's per-ModelDeployment metrics live in modeldeployment-metrics.ts.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { WorkQueueMetrics } from "../kube/workqueue.js";
import { ModelDeploymentMetrics } from "./modeldeployment-metrics.js";

// controller-runtime's reconcile_time_seconds buckets.
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10,
  15, 20, 25, 30, 40, 50, 60,
];
// client-go's workqueue buckets: 10^-8 … 10^1 seconds.
const QUEUE_BUCKETS = Array.from({ length: 10 }, (_, i) => 10 ** (i - 8));

export type ReconcileOutcome = "success" | "error" | "requeue" | "requeue_after";

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal = new Counter({
    name: "controller_runtime_reconcile_total",
    help: "Total number of reconciliations per controller",
    labelNames: ["controller", "result"] as const,
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({
    name: "controller_runtime_reconcile_errors_total",
    help: "Total number of reconciliation errors per controller",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });
  readonly reconcileTime = new Histogram({
    name: "controller_runtime_reconcile_time_seconds",
    help: "Length of time per reconciliation per controller",
    labelNames: ["controller"] as const,
    buckets: RECONCILE_BUCKETS,
    registers: [this.registry],
  });
  readonly activeWorkers = new Gauge({
    name: "controller_runtime_active_workers",
    help: "Number of currently used workers per controller",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });
  readonly maxWorkers = new Gauge({
    name: "controller_runtime_max_concurrent_reconciles",
    help: "Maximum number of concurrent reconciles per controller",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });
  readonly leader = new Gauge({
    name: "leader_election_master_status",
    help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master.",
    labelNames: ["name"] as const,
    registers: [this.registry],
  });
  readonly statusConflicts = new Counter({
    name: "ballast_operator_status_conflicts_total",
    help: "Status writes answered 409 Conflict (then retried on a fresh read)",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });
  private readonly depth = new Gauge({
    name: "workqueue_depth",
    help: "Current depth of workqueue",
    labelNames: ["name", "controller"] as const,
    registers: [this.registry],
  });
  private readonly adds = new Counter({
    name: "workqueue_adds_total",
    help: "Total number of adds handled by workqueue",
    labelNames: ["name", "controller"] as const,
    registers: [this.registry],
  });
  private readonly queueDuration = new Histogram({
    name: "workqueue_queue_duration_seconds",
    help: "How long in seconds an item stays in workqueue before being requested",
    labelNames: ["name", "controller"] as const,
    buckets: QUEUE_BUCKETS,
    registers: [this.registry],
  });
  private readonly workDuration = new Histogram({
    name: "workqueue_work_duration_seconds",
    help: "How long in seconds processing an item from workqueue takes.",
    labelNames: ["name", "controller"] as const,
    buckets: QUEUE_BUCKETS,
    registers: [this.registry],
  });
  private readonly retries = new Counter({
    name: "workqueue_retries_total",
    help: "Total number of retries handled by workqueue",
    labelNames: ["name", "controller"] as const,
    registers: [this.registry],
  });

  /** Ballast's own: loop phase, conditions, windows, budget, retraining Jobs, promotions, rollbacks, scrapes. */
  readonly modelDeployments = new ModelDeploymentMetrics(this.registry);

  constructor() {
    // process_resident_memory_bytes & co., what the operator-scale bench reads for RSS.
    collectDefaultMetrics({ register: this.registry });
  }

  workQueue(controller: string): WorkQueueMetrics {
    const labels = { name: controller, controller };
    return {
      depth: (n) => this.depth.set(labels, n),
      added: () => this.adds.inc(labels),
      queued: (s) => this.queueDuration.observe(labels, s),
      worked: (s) => this.workDuration.observe(labels, s),
      retried: () => this.retries.inc(labels),
    };
  }
}
