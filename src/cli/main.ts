#!/usr/bin/env node
// The `ballast` command: one binary, one image, one subcommand per component (see docs/architecture.md).
import { Command, CommanderError } from "commander";
import { packageVersion } from "./version.js";
import { registerOperator } from "./operator.js";
import { registerDev } from "./dev.js";
import { registerTrain } from "./train.js";
import { registerServe } from "./serve.js";
import { registerSidecar } from "./sidecar.js";
import { registerDrift } from "./drift.js";
import { registerDemo } from "./demo.js";
import { registerHistory } from "./history.js";

export function buildProgram(): Command {
  const program = new Command("ballast")
    .description("Keeps fine-tuned ML models healthy on Kubernetes: serve, monitor, retrain, promote.")
    .version(packageVersion(), "-v, --version", "print the Ballast version")
    .showHelpAfterError("(run with --help for usage)")
    // Program options stop at the subcommand: `serve --version v1` is serve's option, not `ballast --version`.
    .enablePositionalOptions()
    .exitOverride();
  registerOperator(program);
  registerDev(program);
  registerTrain(program);
  registerServe(program);
  registerSidecar(program);
  registerDrift(program);
  registerDemo(program);
  registerHistory(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    // Commander throws for --help/--version (exit 0) and usage errors (exit 2 in our convention).
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2);
    console.error(`ballast: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}

await main(process.argv);
