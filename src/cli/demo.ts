// `ballast demo`: the whole product on real data on a local cluster, narrated (what `make demo` runs).
import { Command } from "commander";
import { join, resolve } from "node:path";
import { ballastCacheDir } from "../devcluster/binaries.js";
import { integer } from "./runtime-flags.js";
import { loadDevOnlyModule } from "./dev-only-modules.js";

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description(
      "start a local cluster, deploy the operator with kustomize, train first versions in GPU Jobs, serve a weather classifier and show " +
        "Seattle traffic calm and New York traffic drifted but judged by its labels; then the closed loop on penguins: Gentoo birds degrade " +
        "the model, the operator retrains it on the GPU node, gates the candidate, shadows it on mirrored live requests (the paired verdict printed), " +
        "promotes and observes it, and accuracy recovers; each window shows its label-free estimate beside its accuracy, and the Prometheus " +
        "started with the cluster answers PromQL about the loop at the end",
    )
    .option("--dir <dir>", "cluster directory (state, logs, kubeconfig); reused when a cluster already runs there", join(ballastCacheDir(), "demo"))
    .option("--keep", "exit after the demo (or a failed step) and leave the cluster running; stop it with `ballast dev down --dir <dir>`")
    .option("--exit-when-done", "run every step, tear the cluster down and exit (for tests and CI); without it the demo stays up until Ctrl-C")
    .option(
      "--epochs <n>",
      "epochs of the weather classifier's first training Job (the example's spec.retraining.hyperparameters.epochs is 30); the penguin Jobs use their example's",
      integer("--epochs", 1, 1000),
      30,
    )
    .option("--window-rows <n>", "rows of Seattle and of New York traffic; also the monitoring window size", integer("--window-rows", 100, 1000), 300)
    .addHelpText(
      "after",
      "\nNarrates each step on stdout, with the kubectl commands it runs. Exit 0 when every step succeeded, 1 when one failed\n" +
        "(it says what failed and which log file to open, and stops the cluster it started), 130 when interrupted.\n" +
        "Needs `make build` and the Kubernetes binaries (`make k8s-binaries`, or KUBEBUILDER_ASSETS); see docs/demo.md.\n" +
        "Example:\n  make demo      # = bin/ballast demo --dir .dev/demo",
    )
    .action(async (flags: { dir: string; keep?: boolean; exitWhenDone?: boolean; epochs: number; windowRows: number }) => {
      const { runDemo, unusableDir } = await loadDevOnlyModule("demo", () => import("../demo/run-demo.js"));
      const refusal = unusableDir(resolve(flags.dir));
      if (refusal) {
        console.error(`ballast demo: ${refusal}`);
        process.exit(2);
      }
      const code = await runDemo({
        dir: flags.dir,
        keep: flags.keep ?? false,
        exitWhenDone: flags.exitWhenDone ?? false,
        epochs: flags.epochs,
        windowRows: flags.windowRows,
        write: (line) => process.stdout.write(`${line}\n`),
      });
      // Keep-alive sockets of the traffic client would hold the process open; the demo is done.
      process.exit(code);
    });
}
