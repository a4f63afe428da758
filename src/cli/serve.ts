// `ballast serve`: the model server container of a serving pod (Open Inference Protocol v2 REST).
import { Command, InvalidArgumentError, Option } from "commander";
import { BACKEND_PREFERENCES, type BackendPreference } from "../runtime/backend.js";
import { DEFAULT_MAX_BATCH_ROWS, DEFAULT_MAX_BODY_BYTES, defaultHost } from "../runtime/http-json.js";
import { duration, integer, runService, runtimeLogger } from "./runtime-flags.js";
import { packageVersion } from "./version.js";

interface ServeFlags {
  store: string;
  model: string;
  version?: string;
  host: string;
  port?: number;
  socket?: string;
  healthPort?: number;
  shutdownDelay: number;
  backend: BackendPreference;
  pvcMountRoot?: string;
  maxBodyBytes: number;
  maxBatchRows: number;
  drainTimeout: number;
  logLevel: string;
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("serve one model version over the Open Inference Protocol v2 REST API (/v2/health/live, /v2/health/ready, /v2/models/<model>/infer, /metrics)")
    .requiredOption("--store <uri>", "model store root: file:///<dir>, pvc://<claim>/<path>, http(s)://<host>/<path> or a directory path")
    .requiredOption("--model <name>", "model name")
    .option("--version <version>", "version to serve (default: the newest in the store)")
    .addOption(new Option("--host <address>", "address to bind").default(defaultHost(), "env POD_IP, else 0.0.0.0"))
    .option(
      "--port <port>",
      "TCP port of the API (0 = any free port, printed in the 'listening' log line); default 8080 unless --socket",
      integer("--port", 0, 65535),
    )
    .option(
      "--socket <path>",
      "serve the API on this Unix domain socket (mode 0660) instead of a TCP port: only processes sharing its directory, uid or group can reach it",
    )
    .option(
      "--health-port <port>",
      "with --socket: a TCP port on --host that answers /v2/health/live and /v2/health/ready only, for probes",
      integer("--health-port", 0, 65535),
    )
    .addOption(
      new Option("--backend <name>", "tfjs backend (auto: tfjs-node-gpu, tfjs-node, wasm, cpu; env BALLAST_TF_BACKEND)")
        .choices([...BACKEND_PREFERENCES])
        .default("auto"),
    )
    .option("--pvc-mount-root <dir>", "where pvc://<claim> is mounted (default env BALLAST_PVC_MOUNT_ROOT, else /mnt/models)")
    .option("--max-body-bytes <n>", "largest request body accepted (413 above)", integer("--max-body-bytes", 1024, 1 << 30), DEFAULT_MAX_BODY_BYTES)
    .option("--max-batch-rows <n>", "most rows in one infer request (413 above)", integer("--max-batch-rows", 1, 1_000_000), DEFAULT_MAX_BATCH_ROWS)
    .addOption(
      new Option("--drain-timeout <duration>", "on SIGTERM, how long in-flight requests may take before connections are dropped")
        .argParser(duration("--drain-timeout"))
        .default(10_000, "10s"),
    )
    .addOption(
      new Option("--shutdown-delay <duration>", "on SIGTERM, how long to go on serving before the drain (longer than the sidecar's shutdown delay plus drain)")
        .argParser(duration("--shutdown-delay"))
        .default(0, "0s"),
    )
    .option("--log-level <level>", "pino log level (env BALLAST_LOG_LEVEL)", process.env.BALLAST_LOG_LEVEL ?? "info")
    .action(async (flags: ServeFlags) => {
      const log = runtimeLogger("serve", flags.logLevel);
      await runService("serve", log, async () => {
        if (flags.socket !== undefined && flags.port !== undefined)
          throw new InvalidArgumentError("give --port or --socket, not both (with --socket, --health-port is the probes' TCP port)");
        if (flags.healthPort !== undefined && flags.socket === undefined)
          throw new InvalidArgumentError("--health-port goes with --socket; without it the API's port answers the probes");
        const { loadBackend } = await import("../runtime/backend.js");
        const { openStore } = await import("../runtime/store.js");
        const { ModelServer } = await import("../runtime/model-server.js");
        const backend = await loadBackend(flags.backend);
        log.info({ event: "backend", backend: backend.backend, provider: backend.provider, skipped: backend.skipped }, `tfjs backend ${backend.backend}`);
        return new ModelServer({
          store: openStore(flags.store, { pvcMountRoot: flags.pvcMountRoot }),
          model: flags.model,
          version: flags.version,
          host: flags.host,
          port: flags.socket === undefined ? (flags.port ?? 8080) : flags.healthPort,
          socketPath: flags.socket,
          shutdownDelayMs: flags.shutdownDelay,
          maxBodyBytes: flags.maxBodyBytes,
          maxBatchRows: flags.maxBatchRows,
          drainTimeoutMs: flags.drainTimeout,
          backend,
          logger: log,
          serverVersion: packageVersion(),
        });
      });
    });
}
