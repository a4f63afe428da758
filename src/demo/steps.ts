// The demo as a table of steps: each one narrates its title, runs, and names the logs that explain its failure.
// The runner numbers them, so no step keeps a counter and the failure report knows which step broke.
import type { Narrator } from "./narrator.js";

export interface DemoStep<Context> {
  /** What the step is, for whoever reads the table or a failure. */
  name: string;
  /** The `[n/N]` title; may use what earlier steps left in the context. */
  narrate(ctx: Context): string;
  run(ctx: Context): Promise<void>;
  /** The files that explain this step's failure, when the error does not name its own. */
  lookAt(ctx: Context): string[];
}

/** A step that threw: its number and entry in the table, and what it threw. */
export class FailedStep<Context> extends Error {
  constructor(
    readonly number: number,
    readonly step: DemoStep<Context>,
    override readonly cause: unknown,
  ) {
    super(`step ${number} (${step.name}): ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = "FailedStep";
  }
}

/** Runs the steps in order, each under its `[n/N]` header; the first that throws stops the run as a FailedStep. */
export async function runSteps<Context>(steps: readonly DemoStep<Context>[], ctx: Context, narrator: Narrator): Promise<void> {
  for (const [index, step] of steps.entries()) {
    try {
      narrator.step(index + 1, step.narrate(ctx));
      await step.run(ctx);
    } catch (err) {
      throw new FailedStep(index + 1, step, err);
    }
  }
}
