// The demo's step runner: a person watching sees `[n/N] title` per step, in order, and a failure names the step
// that broke and the logs that explain it; nothing after it runs.
import { describe, expect, it } from "vitest";
import { Narrator } from "../../../src/demo/narrator.js";
import { FailedStep, runSteps, type DemoStep } from "../../../src/demo/steps.js";

interface Trip {
  ran: string[];
  version?: string;
}

function step(name: string, run: (t: Trip) => void, title: (t: Trip) => string = () => name): DemoStep<Trip> {
  return {
    name,
    narrate: title,
    run: async (t) => {
      t.ran.push(name);
      run(t);
    },
    lookAt: () => [`/logs/${name}.log`],
  };
}

describe("the demo's steps", () => {
  it("run in order, each under its numbered title, and a later title can use what an earlier step found", async () => {
    const lines: string[] = [];
    const trip: Trip = { ran: [] };
    const steps = [
      step("train", (t) => (t.version = "v3")),
      step(
        "serve",
        () => {},
        (t) => `Serve weather/${t.version}`,
      ),
    ];
    await runSteps(steps, trip, new Narrator((l) => lines.push(l), steps.length));
    expect(trip.ran).toEqual(["train", "serve"]);
    expect(lines.filter((l) => l.startsWith("["))).toEqual(["[1/2] train", "[2/2] Serve weather/v3"]);
  });

  it("stop at the first failure, which names the step's number, its logs and what it threw", async () => {
    const lines: string[] = [];
    const trip: Trip = { ran: [] };
    const boom = new Error("the Job failed");
    const steps = [
      step("cluster", () => {}),
      step("train", () => {
        throw boom;
      }),
      step("serve", () => {}),
    ];
    const failure = await runSteps(steps, trip, new Narrator((l) => lines.push(l), steps.length)).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(FailedStep);
    const failed = failure as FailedStep<Trip>;
    expect(failed.number).toBe(2);
    expect(failed.cause).toBe(boom);
    expect(failed.step.lookAt(trip)).toEqual(["/logs/train.log"]);
    expect(failed.message).toBe("step 2 (train): the Job failed");
    expect(trip.ran).toEqual(["cluster", "train"]);
    expect(lines.filter((l) => l.startsWith("["))).toEqual(["[1/3] cluster", "[2/3] train"]);
  });
});
