// `ballast sidecar`: the monitoring container of a serving pod, in front of `ballast serve`.
import os from "node:os";
import { Command, InvalidArgumentError, Option } from "commander";
import { DEFAULT_MAX_BODY_BYTES, defaultHost } from "../runtime/http-json.js";
import type { S3ModelStore } from "../runtime/s3-store.js";
import { parseUpstream, type UpstreamAddress } from "../runtime/sidecar/upstream.js";
import { duration, integer, runService, runtimeLogger } from "./runtime-flags.js";
import { DEFAULT_LOG_MAX_BYTES, DEFAULT_LOG_SEGMENT_BYTES } from "../vocabulary/request-log.js";

interface SidecarFlags {
  upstream: UpstreamAddress;
  store: string;
  model: string;
  modeldeployment?: string;
  version?: string;
  host: string;
  port: number;
  monitoringPort: number;
  feedbackTokenFile?: string;
  shutdownDelay: number;
  dataDir?: string;
  logToStore: boolean;
  shipLog: boolean;
  logSegmentMaxAge?: number;
  pvcMountRoot?: string;
  windowSize: number;
  windowDuration: number;
  windowsKept: number;
  maxTrackedRequests: number;
  logSegmentBytes: number;
  logMaxBytes: number;
  logMaxAge: number;
  maxBodyBytes: number;
  upstreamTimeout: number;
  drainTimeout: number;
  logLevel: string;
  monitoringConfig?: string;
}

function upstreamAddress(value: string): UpstreamAddress {
  const address = parseUpstream(value);
  if (!address)
    throw new InvalidArgumentError(`--upstream must be http://<host>:<port> or unix:/<socket path> (the model server in the same pod), got "${value}"`);
  return address;
}

export function registerSidecar(program: Command): void {
  program
    .command("sidecar")
    .description(
      "proxy in front of `ballast serve`: profiles inputs and predictions per window, joins feedback (POST /v1/feedback), logs both durably, and serves /metrics and /v1/monitoring/summary on the monitoring port",
    )
    .requiredOption("--upstream <address>", "the model server: unix:/run/ballast/server/model.sock or http://127.0.0.1:8080", upstreamAddress)
    .requiredOption("--store <uri>", "model store root (to read the served version's metadata and reference profile)")
    .requiredOption("--model <name>", "model name")
    .option(
      "--modeldeployment <name>",
      "the ModelDeployment served: the modeldeployment label of every metric, with env POD_NAMESPACE as namespace (default: --model)",
    )
    .option("--data-dir <dir>", "directory of the durable request log on the pod's own volume (lost with the pod); use with read-only http(s) stores")
    .option(
      "--log-to-store",
      "keep the request log in the writable store (pvc:// or file://) at <store>/<model>/_log/<POD_NAME>/, where it outlives the pod and the retraining Job reads it",
      false,
    )
    .option(
      "--ship-log",
      "with --data-dir and an s3:// --store: ship sealed segments to <store>/<model>/_log/<POD_NAME>/ (where the retraining Job reads them) and delete each locally once its upload is confirmed; --log-max-bytes then bounds the unshipped spool",
      false,
    )
    .addOption(
      new Option(
        "--log-segment-max-age <duration>",
        "seal the open segment once it holds records and is this old (default with --ship-log: 15s; 0: by size only)",
      ).argParser(duration("--log-segment-max-age")),
    )
    .option("--version <version>", "version the server runs (default: asked from the server)")
    .addOption(new Option("--host <address>", "address to bind").default(defaultHost(), "env POD_IP, else 0.0.0.0"))
    .option("--port <port>", "public port to bind: inference, feedback, probes", integer("--port", 0, 65535), 8000)
    .option(
      "--monitoring-port <port>",
      "port of /v1/monitoring/summary and /metrics, for the operator and Prometheus only (0 = any free port)",
      integer("--monitoring-port", 0, 65535),
      9090,
    )
    .option(
      "--feedback-token-file <file>",
      "file holding the bearer token POST /v1/feedback must carry (Authorization: Bearer <token>); unset: feedback needs no token",
    )
    .option("--pvc-mount-root <dir>", "where pvc://<claim> is mounted (default env BALLAST_PVC_MOUNT_ROOT, else /mnt/models)")
    .option(
      "--monitoring-config <file>",
      "the operator's monitoring.json: drift.method / drift.threshold, features to judge, reference.uri (default env BALLAST_MONITORING_CONFIG)",
      process.env.BALLAST_MONITORING_CONFIG,
    )
    .option("--window-size <rows>", "close a monitoring window after this many inference rows (0: no size bound)", integer("--window-size", 0, 1e9), 1000)
    .addOption(
      new Option("--window-duration <duration>", "close a monitoring window at the next multiple of this duration (0: no time bound)")
        .argParser(duration("--window-duration"))
        .default(300_000, "5m"),
    )
    .option("--windows-kept <n>", "closed windows kept in the summary", integer("--windows-kept", 1, 10_000), 12)
    .option("--max-tracked-requests <n>", "request ids remembered for joining feedback (older ids get 404)", integer("--max-tracked-requests", 1, 1e8), 100_000)
    .addOption(
      new Option("--log-segment-bytes <n>", "start a new request log segment above this size")
        .argParser(integer("--log-segment-bytes", 4096, 2 ** 40))
        .default(DEFAULT_LOG_SEGMENT_BYTES, "64 MiB"),
    )
    .addOption(
      new Option(
        "--log-max-bytes <n>",
        "delete the oldest sealed segments while the model's request log (with --log-to-store: every pod's directory) is larger than this",
      )
        .argParser(integer("--log-max-bytes", 4096, 2 ** 50))
        .default(DEFAULT_LOG_MAX_BYTES, "1 GiB"),
    )
    .addOption(
      new Option("--log-max-age <duration>", "delete sealed segments last written longer ago than this (0: no age bound)")
        .argParser(duration("--log-max-age"))
        .default(30 * 24 * 3_600_000, "720h (30 days)"),
    )
    .option(
      "--max-body-bytes <n>",
      "largest body inspected (larger infer bodies are proxied unrecorded; larger feedback gets 413)",
      integer("--max-body-bytes", 1024, 1 << 30),
      DEFAULT_MAX_BODY_BYTES,
    )
    .addOption(
      new Option("--upstream-timeout <duration>", "a proxied request without a response after this long gets 503")
        .argParser(duration("--upstream-timeout"))
        .default(30_000, "30s"),
    )
    .addOption(
      new Option("--shutdown-delay <duration>", "on SIGTERM, how long to keep proxying while not ready, so the Service stops sending traffic before the drain")
        .argParser(duration("--shutdown-delay"))
        .default(0, "0s"),
    )
    .addOption(
      new Option("--drain-timeout <duration>", "on SIGTERM, after the shutdown delay, how long in-flight requests may take")
        .argParser(duration("--drain-timeout"))
        .default(10_000, "10s"),
    )
    .option("--log-level <level>", "pino log level (env BALLAST_LOG_LEVEL)", process.env.BALLAST_LOG_LEVEL ?? "info")
    .action(async (flags: SidecarFlags) => {
      const log = runtimeLogger("sidecar", flags.logLevel);
      await runService("sidecar", log, async () => {
        if (flags.windowSize === 0 && flags.windowDuration === 0) throw new InvalidArgumentError("--window-size and --window-duration cannot both be 0");
        if ((flags.dataDir === undefined) === !flags.logToStore) throw new InvalidArgumentError("give exactly one of --data-dir <dir> and --log-to-store");
        if (flags.monitoringPort !== 0 && flags.monitoringPort === flags.port)
          throw new InvalidArgumentError("--monitoring-port must differ from --port: the summary and metrics are not for the public port");
        if (flags.shipLog && (flags.dataDir === undefined || !flags.store.startsWith("s3://")))
          throw new InvalidArgumentError("--ship-log needs --data-dir (the local spool) and an s3:// --store to ship to");
        const pod = process.env.POD_NAME ?? os.hostname();
        const { storeLogLocation } = await import("../runtime/request-log.js");
        const logDir = flags.logToStore
          ? storeLogLocation(flags.store, flags.model, pod, { pvcMountRoot: flags.pvcMountRoot })
          : { dir: flags.dataDir!, root: undefined };
        const { openStore } = await import("../runtime/store.js");
        const { Sidecar } = await import("../runtime/sidecar/sidecar.js");
        const store = openStore(flags.store, { pvcMountRoot: flags.pvcMountRoot });
        if (flags.shipLog) {
          const { POD_NAME_PATTERN } = await import("../runtime/log-segments.js");
          if (!POD_NAME_PATTERN.test(pod)) throw new InvalidArgumentError(`pod name "${pod}" (env POD_NAME) cannot name a log directory in the store`);
        }
        return new Sidecar({
          upstream: flags.upstream,
          store,
          ...(flags.shipLog ? { shipLogTo: store as S3ModelStore } : {}),
          storeOptions: { pvcMountRoot: flags.pvcMountRoot },
          monitoringConfig: flags.monitoringConfig,
          model: flags.model,
          modelDeployment: { name: flags.modeldeployment ?? flags.model, namespace: process.env.POD_NAMESPACE },
          version: flags.version,
          host: flags.host,
          port: flags.port,
          monitoringPort: flags.monitoringPort,
          feedbackTokenFile: flags.feedbackTokenFile,
          shutdownDelayMs: flags.shutdownDelay,
          dataDir: logDir.dir,
          logRoot: logDir.root,
          windowRows: flags.windowSize,
          windowMs: flags.windowDuration,
          windowsKept: flags.windowsKept,
          maxTracked: flags.maxTrackedRequests,
          requestLogOptions: {
            segmentBytes: flags.logSegmentBytes,
            maxBytes: flags.logMaxBytes,
            maxAgeMs: flags.logMaxAge,
            ...(flags.logSegmentMaxAge !== undefined ? { segmentMaxAgeMs: flags.logSegmentMaxAge } : {}),
          },
          maxBodyBytes: flags.maxBodyBytes,
          upstreamTimeoutMs: flags.upstreamTimeout,
          drainTimeoutMs: flags.drainTimeout,
          pod,
          logger: log,
        });
      });
    });
}
