#!/usr/bin/env node
// The `ballast` command: one binary, one image, one subcommand per component (see docs/architecture.md).
import { Command, CommanderError } from "commander";
import { packageVersion } from "./version.js";

/**
 * Each subcommand's module, imported only when that subcommand runs (all of them for the overall help): `ballast
 * operator` starts without loading the serving, sidecar, training and drift code, which it never runs.
 */
const COMMANDS: Record<string, () => Promise<(program: Command) => void>> = {
  operator: async () => (await import("./operator.js")).registerOperator,
  dev: async () => (await import("./dev.js")).registerDev,
  train: async () => (await import("./train.js")).registerTrain,
  serve: async () => (await import("./serve.js")).registerServe,
  sidecar: async () => (await import("./sidecar.js")).registerSidecar,
  drift: async () => (await import("./drift.js")).registerDrift,
  demo: async () => (await import("./demo.js")).registerDemo,
  history: async () => (await import("./history.js")).registerHistory,
};

/** The program with the subcommand `command` registered, or every subcommand when it names none of them. */
export async function buildProgram(command?: string): Promise<Command> {
  const program = new Command("ballast")
    .description("Keeps fine-tuned ML models healthy on Kubernetes: serve, monitor, retrain, promote.")
    .version(packageVersion(), "-v, --version", "print the Ballast version")
    .showHelpAfterError("(run with --help for usage)")
    // Program options stop at the subcommand: `serve --version v1` is serve's option, not `ballast --version`.
    .enablePositionalOptions()
    .exitOverride();
  const names = command !== undefined && Object.hasOwn(COMMANDS, command) ? [command] : Object.keys(COMMANDS);
  // In COMMANDS' order, so the help lists them as before.
  for (const register of await Promise.all(names.map((name) => COMMANDS[name]!()))) register(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  const program = await buildProgram(argv[2]);
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
