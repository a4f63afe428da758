// `ballast operator`: the controller. Flags follow controller-runtime's (kubebuilder's main.go) names;
// every flag also reads an environment variable, for Deployments and Helm values.
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { parseBindAddress } from "../operator/bind-address.js";
import type { RunOperatorOptions } from "../operator/run.js";
import { packageVersion } from "./version.js";

export const DEFAULT_IMAGE_REPOSITORY = "ghcr.io/ballast-dev/ballast";

function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError(`${flag} must be an integer from 1 to 1000, got "${value}"`);
    return n;
  };
}

function bindAddress(flag: string) {
  return (value: string): string => {
    try {
      parseBindAddress(flag, value);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
    return value;
  };
}

function booleanFlag(flag: string) {
  return (value: string): boolean => {
    if (/^(true|1|yes)$/i.test(value)) return true;
    if (/^(false|0|no)$/i.test(value)) return false;
    throw new InvalidArgumentError(`${flag} must be true or false, got "${value}"`);
  };
}

function namespaceList(value: string): string[] {
  const names = value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  for (const n of names)
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(n) || n.length > 63) throw new InvalidArgumentError(`"${n}" is not a valid namespace name`);
  return names;
}

export function registerOperator(program: Command): void {
  program
    .command("operator")
    .description("Run the Ballast operator: reconcile ModelDeployments into serving Deployments, Services and ConfigMaps.")
    .addOption(new Option("--kubeconfig <path>", "kubeconfig file; default $KUBECONFIG, ~/.kube/config, then the in-cluster ServiceAccount").env("KUBECONFIG"))
    .addOption(new Option("--namespaces <list>", "comma-separated namespaces to watch; default all").env("WATCH_NAMESPACES").argParser(namespaceList))
    .addOption(new Option("--workers <n>", "concurrent reconciles").env("BALLAST_WORKERS").default(4).argParser(positiveInt("--workers")))
    .addOption(
      new Option("--metrics-bind-address <addr>", "address of /metrics (host:port, :port, 0 = off)")
        .env("BALLAST_METRICS_BIND_ADDRESS")
        .default(":8080")
        .argParser(bindAddress("--metrics-bind-address")),
    )
    .addOption(
      new Option("--health-probe-bind-address <addr>", "address of /healthz and /readyz (host:port, :port, 0 = off)")
        .env("BALLAST_HEALTH_PROBE_BIND_ADDRESS")
        .default(":8081")
        .argParser(bindAddress("--health-probe-bind-address")),
    )
    .addOption(
      new Option("--leader-elect [enabled]", "elect a leader through a Lease so only one replica reconciles (true|false)")
        .env("BALLAST_LEADER_ELECT")
        .preset(true)
        .default(false)
        .argParser(booleanFlag("--leader-elect")),
    )
    .addOption(
      new Option("--leader-election-namespace <ns>", "namespace of the leader election Lease; default the pod's namespace").env(
        "BALLAST_LEADER_ELECTION_NAMESPACE",
      ),
    )
    .addOption(
      new Option("--leader-election-id <name>", "name of the leader election Lease").env("BALLAST_LEADER_ELECTION_ID").default("ballast-operator-leader"),
    )
    .addOption(
      new Option("--image <ref>", "Ballast image for serving pods whose spec names none")
        .env("BALLAST_IMAGE")
        .default(`${DEFAULT_IMAGE_REPOSITORY}:${packageVersion()}`),
    )
    .addOption(new Option("--log-level <level>", "pino log level").env("BALLAST_LOG_LEVEL").choices(["debug", "info", "warn", "error"]).default("info"))
    .addHelpText(
      "after",
      `
Endpoints: /healthz (500 when a reconcile is stuck or leader election stalled), /readyz (informer caches synced),
/metrics (Prometheus, controller-runtime names).
SIGTERM or SIGINT: drain the work queue, release the Lease, exit 0. Leadership lost (not renewed within 10 s):
exit 1 at once, writing nothing more; the Deployment restarts the pod as a candidate.

Examples:
  ballast operator --kubeconfig .dev/cluster/kubeconfig --metrics-bind-address :8080
  ballast operator --leader-elect --leader-election-namespace ballast-system --namespaces team-a,team-b`,
    )
    .action(async (flags: RunOperatorOptions) => {
      const { runOperator, OperatorUsageError } = await import("../operator/run.js");
      await runOperator(flags).catch((err: unknown) => {
        if (!(err instanceof OperatorUsageError)) throw err;
        console.error(`ballast operator: ${err.message}`);
        throw new CommanderError(2, "ballast.operator.usage", err.message);
      });
    });
}
