// The HTTP paths of a serving pod's sidecar: the sidecar answers them, the operator's Deployment probes them and
// its monitoring reconciler scrapes the summary, the demo calls them. One definition below both sides, so the
// operator does not import the runtime to know them.
export const SIDECAR_PATHS = {
  live: "/v1/sidecar/live",
  ready: "/v1/sidecar/ready",
  feedback: "/v1/feedback",
  summary: "/v1/monitoring/summary",
  /** Monitoring port only: the operator sets (PUT), reads (GET) and stops (DELETE) mirroring to a shadow candidate. */
  mirror: "/v1/mirror",
  metrics: "/metrics",
} as const;
