// `ballast train`: train or fine-tune a tabular MLP and write an immutable model version (runs in the retraining Job).
import { writeFileSync } from "node:fs";
import fs from "node:fs/promises";
import { Command, InvalidArgumentError, Option } from "commander";
import { BACKEND_PREFERENCES } from "../runtime/backend.js";
import { encodeTrainFailure, encodeTrainResult, trainResultFromMetadata } from "../training/result.js";
import type { TrainOptions } from "../training/trainer.js";
import { exitCodeFor, fraction, integer, positiveNumber, runtimeLogger } from "./runtime-flags.js";

/** Commander's parsed flags: TrainOptions with the store as a URI and lists as comma-separated text. */
type TrainFlags = Omit<TrainOptions, "store" | "hiddenUnits" | "features" | "data" | "trialShard" | "onEpoch" | "onBackend" | "onFeedback" | "onTrial"> & {
  data?: string[];
  store: string;
  hidden: string;
  features?: string;
  trialShards: number;
  trialShard?: number;
  terminationMessagePath?: string;
};

const METRICS = ["accuracy", "precision", "recall", "f1", "f1Weighted", "mae", "rmse", "r2"];

function hiddenUnits(value: string): number[] {
  if (value === "" || value === "none") return [];
  return value.split(",").map((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 4096) throw new InvalidArgumentError(`--hidden: "${v}" is not a layer width from 1 to 4096`);
    return n;
  });
}

function isoTime(value: string): string {
  if (!Number.isFinite(Date.parse(value))) throw new InvalidArgumentError(`--feedback-since must be an ISO time like 2026-01-02T03:04:05Z, got "${value}"`);
  return value;
}

/** This process's trial shard: --trial-shard, else the Indexed Job's JOB_COMPLETION_INDEX, else 0 (one shard only). */
function trialShard(flags: TrainFlags): { index: number; count: number } {
  const count = flags.trialShards;
  const fromEnv = process.env.JOB_COMPLETION_INDEX;
  let index = flags.trialShard;
  if (index === undefined && fromEnv !== undefined && fromEnv !== "") {
    index = Number(fromEnv);
    if (!Number.isInteger(index) || index < 0) throw new InvalidArgumentError(`env JOB_COMPLETION_INDEX must be a non-negative integer, got "${fromEnv}"`);
  }
  if (index === undefined) {
    if (count > 1) throw new InvalidArgumentError(`--trial-shards ${count} needs --trial-shard <k> or env JOB_COMPLETION_INDEX (an Indexed Job sets it)`);
    index = 0;
  }
  if (index >= count) throw new InvalidArgumentError(`trial shard ${index} is out of range for --trial-shards ${count} (use 0 to ${count - 1})`);
  return { index, count };
}

/** --termination-message-path from the raw arguments: flag errors happen before commander hands us the flags. */
function terminationPathFromArgv(argv: readonly string[]): string | undefined {
  const flag = "--termination-message-path";
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === flag) return argv[i + 1];
    if (argv[i]!.startsWith(`${flag}=`)) return argv[i]!.slice(flag.length + 1);
  }
  return undefined;
}

export function registerTrain(program: Command): void {
  program
    .command("train")
    .description(
      "train (or fine-tune with --from-version) a tabular MLP on CSV / JSON Lines / sidecar-log data and feedback, select among a few trials, evaluate the candidate against its parent on the recent and original holdouts, and write a new model version to the store",
    )
    .option(
      "--data <sources...>",
      "training data: .csv, .jsonl/.ndjson/.json files (paths, file://, pvc://, http(s)://), or a sidecar log directory (sidecar-log://<dir> or a directory path)",
    )
    .option("--data-from-parent", "also read the --from-version version's training data sources (its metadata's dataWindow.sources)")
    .option(
      "--feedback <uris...>",
      "sidecar log roots (path, file://, pvc:// or sidecar-log://): a log directory or a directory of per-pod log directories (<store>/<model>/_log); the recent holdout is drawn from these rows",
    )
    .option("--feedback-since <time>", "ISO time: use feedback predicted at or after it (when the serving version went live)", isoTime)
    .requiredOption("--store <uri>", "model store root: file:///<dir>, pvc://<claim>/<path> or a directory path")
    .requiredOption("--model <name>", "model name (directory under the store root)")
    .option("--label <column>", "label column (default: the parent version's, or the one the sidecar log recorded)")
    .addOption(
      new Option("--task <task>", "what the label is (default: the parent version's / sidecar log's, else classification)").choices([
        "classification",
        "regression",
      ]),
    )
    .option("--features <columns>", "comma-separated feature columns (default: every column except the label)")
    .option("--version <name>", "name of the new version (default: next v<N>; required with --trial-shards > 1, which writes <name>-<shard>)")
    .option(
      "--from-version <version>",
      "the serving version: fine-tune it (keeps its preprocessing and classes), carry its original holdout forward, and compare against it",
    )
    .option("--candidate", "mark the version a candidate: never picked as the latest version until named explicitly")
    .addOption(new Option("--metric <name>", "selection and evaluation metric (default accuracy for classification, rmse for regression)").choices(METRICS))
    .option("--max-trials <n>", "trials of the search, in order: fine-tune, scratch, wider, stronger-l2", integer("--max-trials", 1, 4), 4)
    .option("--trial-shards <n>", "split the trials across this many processes (an Indexed Job's completions)", integer("--trial-shards", 1, 4), 1)
    .option("--trial-shard <k>", "this process's shard (default env JOB_COMPLETION_INDEX)", integer("--trial-shard", 0, 3))
    .option("--termination-message-path <file>", "write the result (or the error) as JSON of at most 4096 bytes here, e.g. /dev/termination-log")
    .option("--epochs <n>", "maximum epochs", integer("--epochs", 1, 10_000), 30)
    .option("--patience <n>", "early stopping: epochs without validation improvement before stopping", integer("--patience", 1, 10_000), 5)
    .option(
      "--holdout <fraction>",
      "share held out for evaluation, never trained on: of the feedback (recent holdout) and, without a parent holdout, of --data (original holdout)",
      fraction("--holdout"),
      0.2,
    )
    .option("--validation <fraction>", "share of the training rows used for early stopping and choosing among trials", fraction("--validation"), 0.1)
    .option("--seed <n>", "seed for splits, shuffling and initial weights (same seed + data + backend = same model)", integer("--seed", 0, 2 ** 31 - 1), 42)
    .option("--batch-size <n>", "rows per gradient step", integer("--batch-size", 1, 1_000_000), 64)
    .option("--learning-rate <x>", "Adam learning rate (fine-tune trial: × 0.1)", positiveNumber("--learning-rate"), 0.01)
    .option("--hidden <widths>", "hidden layer widths, comma-separated ('none' for a linear model); with --from-version the parent's", "32,16")
    .option("--l2 <x>", "L2 regularisation on every kernel", positiveNumber("--l2", true), 1e-4)
    .addOption(new Option("--backend <name>", "tfjs backend (auto: tfjs-node-gpu, tfjs-node, wasm, cpu)").choices([...BACKEND_PREFERENCES]).default("auto"))
    .option("--pvc-mount-root <dir>", "where pvc://<claim> is mounted (default env BALLAST_PVC_MOUNT_ROOT, else /mnt/models)")
    .option(
      "--max-feedback-rows <n>",
      "use only the newest N labelled rows of each --data sidecar log, and of --feedback after merging",
      integer("--max-feedback-rows", 1, 1e9),
    )
    .addOption(new Option("--data-format <format>", "format of --data files whose name has no .csv/.jsonl/.json extension").choices(["csv", "jsonl", "json"]))
    .option(
      "--data-max-bytes <n>",
      "refuse an http(s) --data source larger than this many bytes (default 4 GiB)",
      integer("--data-max-bytes", 1, Number.MAX_SAFE_INTEGER),
    )
    .addHelpText(
      "after",
      "\nPrints one JSON line with the new version and its holdout metrics on stdout; logs (one per epoch) go to stderr.\n" +
        "Examples:\n  ballast train --data weather.csv --features precipitation,temp_max,temp_min,wind --label weather --store ./models --model weather --epochs 20\n" +
        "  ballast train --data-from-parent --from-version v3 --feedback pvc://models/store/weather/_log --feedback-since 2026-01-02T03:04:05Z \\\n" +
        "    --store pvc://models/store --model weather --version r1-abc123 --candidate --termination-message-path /dev/termination-log",
    )
    .configureOutput({
      // A usage error still reaches the operator as a result, not only as the log's tail.
      outputError: (text, write) => {
        write(text);
        const file = terminationPathFromArgv(process.argv);
        if (file) {
          try {
            writeFileSync(file, encodeTrainFailure(text.trim().replace(/^error: /, "")));
          } catch {
            // Best effort: the error is on stderr either way.
          }
        }
      },
    })
    .action(async (flags: TrainFlags) => {
      const log = runtimeLogger("train");
      try {
        const hidden = hiddenUnits(flags.hidden);
        const shard = trialShard(flags);
        const { openStore } = await import("../runtime/store.js");
        const { train } = await import("../training/trainer.js");
        const store = openStore(flags.store, { pvcMountRoot: flags.pvcMountRoot });
        const { terminationMessagePath, trialShards: _count, ...rest } = flags;
        const result = await train({
          ...rest,
          data: flags.data ?? [],
          store,
          features: flags.features
            ?.split(",")
            .map((f) => f.trim())
            .filter((f) => f !== ""),
          hiddenUnits: hidden,
          trialShard: shard,
          onBackend: (b) => log.info({ event: "backend", ...b }, `tfjs backend ${b.backend}`),
          onFeedback: (f) => log.info({ event: "feedback", ...f }, `${f.rows} labelled feedback rows from ${f.directories.length} log directories`),
          onEpoch: (p) =>
            log.info({ event: "epoch", ...p }, `${p.trial ?? "trial"} epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} val_loss ${p.valLoss.toFixed(4)}`),
          onTrial: (t) => log.info({ event: "trial", ...t }, `trial ${t.name}: validation ${t.validation}`),
        });
        const m = result.metadata;
        log.info(
          {
            event: "trained",
            model: m.model,
            version: m.version,
            backend: result.backend,
            holdoutMetrics: m.holdoutMetrics,
            parentVersion: m.parentVersion,
            evaluation: m.evaluation,
          },
          `wrote ${m.model}/${m.version}`,
        );
        if (terminationMessagePath) await fs.writeFile(terminationMessagePath, encodeTrainResult(trainResultFromMetadata(m)));
        process.stdout.write(
          JSON.stringify({
            model: m.model,
            version: m.version,
            store: store.uri,
            backend: result.backend,
            parentVersion: m.parentVersion,
            holdoutMetrics: m.holdoutMetrics,
            ...(m.parentHoldoutMetrics ? { parentHoldoutMetrics: m.parentHoldoutMetrics } : {}),
            rows: m.dataWindow.rows,
            epochsRun: m.training.epochsRun,
            stoppedEarly: result.stoppedEarly,
            candidate: m.candidate === true,
            selectedTrial: m.trials?.find((t) => t.selected)?.name,
            // The calibration error at training time, beside the metrics (classification).
            ...(m.probabilityCalibration ? { probabilityCalibration: m.probabilityCalibration } : {}),
          }) + "\n",
        );
      } catch (err) {
        const message = (err as Error).message;
        log.error({ event: "train-failed", error: message }, "training failed");
        console.error(`ballast train: ${message}`);
        if (flags.terminationMessagePath) {
          await fs
            .writeFile(flags.terminationMessagePath, encodeTrainFailure(message))
            .catch((e: Error) =>
              log.error({ event: "termination-message-failed", error: e.message, path: flags.terminationMessagePath }, "cannot write the termination message"),
            );
        }
        process.exitCode = exitCodeFor(err);
      }
    });
}
