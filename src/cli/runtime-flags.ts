// Flag parsers, logger and exit codes shared by `ballast train`, `serve` and `sidecar`.
import { CommanderError, InvalidArgumentError } from "commander";
import { pino, type Logger } from "pino";
import { parseDurationMs } from "../api/duration.js";
import { FeatureValueError } from "../runtime/features.js";
import { MonitoringConfigError } from "../runtime/monitoring-config.js";
import { FeedbackTokenFileError } from "../runtime/sidecar/feedback-auth.js";
import { StoreError } from "../runtime/store.js";
import { DataError } from "../training/data.js";

export function integer(flag: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${flag} must be an integer from ${min} to ${max}, got "${value}"`);
    return n;
  };
}

export function fraction(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`${flag} must be a number in [0, 1), got "${value}"`);
    return n;
  };
}

export function positiveNumber(flag: string, allowZero = false): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
      throw new InvalidArgumentError(`${flag} must be a ${allowZero ? "non-negative" : "positive"} number, got "${value}"`);
    }
    return n;
  };
}

/** A duration flag in the CRD's grammar (src/api/duration.ts): 500ms, 30s, 5m, 1h30m, 0. */
export function duration(flag: string): (value: string) => number {
  return (value) => {
    try {
      return parseDurationMs(value.trim());
    } catch {
      throw new InvalidArgumentError(`${flag} must be a duration like 500ms, 30s, 5m or 1h30m (a number and a unit), got "${value}"`);
    }
  };
}

/** pino JSON on stderr with the pod's identity, so stdout stays free for command output. */
export function runtimeLogger(component: string, level = process.env.BALLAST_LOG_LEVEL ?? "info"): Logger {
  return pino(
    {
      level,
      base: {
        component,
        ...(process.env.POD_NAME ? { pod: process.env.POD_NAME } : {}),
        ...(process.env.POD_NAMESPACE ? { namespace: process.env.POD_NAMESPACE } : {}),
      },
    },
    pino.destination(2),
  );
}

/** 2 for anything the user can fix in their input (flags, files, names); 1 for everything else. */
export function exitCodeFor(err: unknown): number {
  if (
    err instanceof DataError ||
    err instanceof FeatureValueError ||
    err instanceof MonitoringConfigError ||
    err instanceof FeedbackTokenFileError ||
    err instanceof CommanderError
  )
    return 2;
  if (err instanceof StoreError) return err.code === "io" ? 1 : 2;
  return 1;
}

/** Creates and starts a long-running service (serve, sidecar); SIGTERM drains it. Start failures exit 1 or 2. */
export async function runService(command: string, log: Logger, create: () => Promise<{ start(): Promise<unknown>; stop(): Promise<void> }>): Promise<void> {
  try {
    const service = await create();
    stopOnSignals(log, () => service.stop());
    await service.start();
  } catch (err) {
    log.error({ event: "start-failed", error: (err as Error).message }, `${command} failed to start`);
    console.error(`ballast ${command}: ${(err as Error).message}`);
    process.exit(exitCodeFor(err));
  }
}

/** SIGTERM / SIGINT: stop gracefully once, then exit 0 (a second signal exits at once). */
function stopOnSignals(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(1);
    stopping = true;
    log.info({ event: "shutdown", signal }, "draining and shutting down");
    stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}
