// `ballast train`: train or fine-tune a tabular MLP and write an immutable model version (runs in the retraining Job).
import { Command, InvalidArgumentError, Option } from "commander";
import { BACKEND_PREFERENCES } from "../runtime/backend.js";
import type { TrainOptions } from "../training/trainer.js";
import { exitCodeFor, fraction, integer, positiveNumber, runtimeLogger } from "./runtime-flags.js";

/** Commander's parsed flags: TrainOptions with the store as a URI and lists as comma-separated text. */
type TrainFlags = Omit<TrainOptions, "store" | "hiddenUnits" | "features" | "onEpoch" | "onBackend"> & { store: string; hidden: string; features?: string };

function hiddenUnits(value: string): number[] {
  if (value === "" || value === "none") return [];
  return value.split(",").map((v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 4096) throw new InvalidArgumentError(`--hidden: "${v}" is not a layer width from 1 to 4096`);
    return n;
  });
}

export function registerTrain(program: Command): void {
  program
    .command("train")
    .description(
      "train (or fine-tune with --from-version) a tabular MLP on CSV / JSON Lines / sidecar-log data, evaluate it on a holdout, and write a new model version to the store",
    )
    .requiredOption("--data <sources...>", "training data: .csv, .jsonl/.ndjson/.json files (paths, file://, pvc://, http(s)://), or a sidecar log directory (sidecar-log://<dir> or a directory path)")
    .requiredOption("--store <uri>", "model store root: file:///<dir>, pvc://<claim>/<path> or a directory path")
    .requiredOption("--model <name>", "model name (directory under the store root)")
    .option("--label <column>", "label column (default: the parent version's, or the one the sidecar log recorded)")
    .addOption(new Option("--task <task>", "what the label is (default: the parent version's / sidecar log's, else classification)").choices(["classification", "regression"]))
    .option("--features <columns>", "comma-separated feature columns (default: every column except the label)")
    .option("--version <name>", "name of the new version (default: next v<N>)")
    .option("--from-version <version>", "fine-tune this existing version (keeps its preprocessing and classes; its holdout metrics on the new holdout are reported)")
    .option("--epochs <n>", "maximum epochs", integer("--epochs", 1, 10_000), 30)
    .option("--patience <n>", "early stopping: epochs without validation improvement before stopping", integer("--patience", 1, 10_000), 5)
    .option("--holdout <fraction>", "share of rows held out for evaluation (never trained on)", fraction("--holdout"), 0.2)
    .option("--validation <fraction>", "share of the remaining rows used for early stopping", fraction("--validation"), 0.1)
    .option("--seed <n>", "seed for splits, shuffling and initial weights (same seed + data + backend = same model)", integer("--seed", 0, 2 ** 31 - 1), 42)
    .option("--batch-size <n>", "rows per gradient step", integer("--batch-size", 1, 1_000_000), 64)
    .option("--learning-rate <x>", "Adam learning rate", positiveNumber("--learning-rate"), 0.01)
    .option("--hidden <widths>", "hidden layer widths, comma-separated ('none' for a linear model)", "32,16")
    .option("--l2 <x>", "L2 regularisation on every kernel", positiveNumber("--l2", true), 1e-4)
    .addOption(new Option("--backend <name>", "tfjs backend (auto: tfjs-node-gpu, tfjs-node, wasm, cpu)").choices([...BACKEND_PREFERENCES]).default("auto"))
    .option("--pvc-mount-root <dir>", "where pvc://<claim> is mounted (default env BALLAST_PVC_MOUNT_ROOT, else /mnt/models)")
    .option("--max-feedback-rows <n>", "use only the newest N labelled rows of sidecar logs", integer("--max-feedback-rows", 1, 1e9))
    .addOption(new Option("--data-format <format>", "format of --data files whose name has no .csv/.jsonl/.json extension").choices(["csv", "jsonl", "json"]))
    .addHelpText(
      "after",
      "\nPrints one JSON line with the new version and its holdout metrics on stdout; logs (one per epoch) go to stderr.\n" +
        "Example:\n  ballast train --data weather.csv --features precipitation,temp_max,temp_min,wind --label weather --store ./models --model weather --epochs 20",
    )
    .action(async (flags: TrainFlags) => {
      const log = runtimeLogger("train");
      try {
        const hidden = hiddenUnits(flags.hidden);
        const { openStore } = await import("../runtime/store.js");
        const { train } = await import("../training/trainer.js");
        const store = openStore(flags.store, { pvcMountRoot: flags.pvcMountRoot });
        const result = await train({
          ...flags,
          store,
          features: flags.features?.split(",").map((f) => f.trim()).filter((f) => f !== ""),
          hiddenUnits: hidden,
          onBackend: (b) => log.info({ event: "backend", ...b }, `tfjs backend ${b.backend}`),
          onEpoch: (p) => log.info({ event: "epoch", ...p }, `epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} val_loss ${p.valLoss.toFixed(4)}`),
        });
        const m = result.metadata;
        log.info(
          { event: "trained", model: m.model, version: m.version, backend: result.backend, holdoutMetrics: m.holdoutMetrics, parentVersion: m.parentVersion },
          `wrote ${m.model}/${m.version}`,
        );
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
          }) + "\n",
        );
      } catch (err) {
        log.error({ event: "train-failed", error: (err as Error).message }, "training failed");
        console.error(`ballast train: ${(err as Error).message}`);
        process.exitCode = exitCodeFor(err);
      }
    });
}
