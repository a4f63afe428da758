// `ballast train` on a large request log with sparse labels: memory follows the labelled rows, not the log.
// The unit suite uses a 512 MiB log (about 20 s here); BALLAST_TRAIN_MEMORY_LOG_MIB=2048 runs the same at 2 GiB
// (docs/security.md has both figures).
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ballastBin } from "../runtime/local-processes.js";
import { useTempDirs } from "../runtime/temp-dirs.js";
import { writeSparseLog } from "./large-log.js";

const LOG_MIB = Number(process.env.BALLAST_TRAIN_MEMORY_LOG_MIB ?? 512);
const LOG_BYTES = LOG_MIB * 1024 * 1024;
const RSS_LIMIT_MIB = 400;
const tempDir = useTempDirs("ballast-train-memory-");

/** Runs `bin/ballast <args>`, sampling the child's peak RSS (VmHWM) until it exits. */
async function runMeasured(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; peakRssMiB: number }> {
  const child = spawn(ballastBin, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  let peakKiB = 0;
  const sample = (): void => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${child.pid}/status`, "utf8"));
      if (m) peakKiB = Math.max(peakKiB, Number(m[1]));
    } catch {
      // exited between samples
    }
  };
  const timer = setInterval(sample, 50);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearInterval(timer);
  return { code, stdout, stderr, peakRssMiB: peakKiB / 1024 };
}

describe("ballast train on a large request log", () => {
  it(`trains from a ${LOG_MIB} MiB log with one label per 1000 predictions in bounded memory`, async () => {
    const dir = tempDir();
    const logRoot = path.join(dir, "store", "m", "_log");
    const log = writeSparseLog(path.join(logRoot, "m-serving-a"), LOG_BYTES);
    const started = Date.now();
    const run = await runMeasured(["train", "--feedback", logRoot, "--store", path.join(dir, "store"), "--model", "m", "--epochs", "1", "--max-trials", "1"]);
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    const out = JSON.parse(run.stdout) as { rows: number; holdoutMetrics: { accuracy: number } };
    // Every labelled row was found, and nothing else was kept.
    expect(out.rows).toBe(log.labelled);
    expect(out.holdoutMetrics.accuracy).toBeGreaterThan(0.8);
    console.info(
      `ballast train: ${(log.bytes / 2 ** 20).toFixed(0)} MiB log, ${log.labelled} labelled rows: peak RSS ${run.peakRssMiB.toFixed(0)} MiB, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
    expect(run.peakRssMiB).toBeLessThan(RSS_LIMIT_MIB);
  }, 600_000);
});
