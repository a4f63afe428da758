// bench/drift, end to end: `ballast drift` as a user runs it on the bench's data written as CSV and Parquet,
// this tree's dist/ against a baseline build (e.g. main's, before the columnar reader) in the same run.
// Usage: node bench/drift/cli.ts DATA_DIR [BASELINE_DIST]   (DATA_DIR from baselines.py generate; the files are
// written there once; CLI_TIMEOUT=seconds bounds each run, default 300; CLI_THRESHOLD_MODE=calibrated adds the
// permutation calibration, default fixed: reading, profiling and comparing, what the peers do). Prints wall and CPU seconds of each
// run, the ratios, the drifted features and the load average.
import { spawnSync } from "node:child_process";
import { createWriteStream, existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { once } from "node:events";
import { parquetWriteBuffer } from "hyparquet-writer";
import { readMeta, readRawColumns, type Meta } from "./data.ts";

type RawColumns = ReturnType<typeof readRawColumns>;

async function writeCsv(file: string, meta: Meta, data: RawColumns, n: number): Promise<void> {
  const out = createWriteStream(`${file}.partial`);
  out.write([...meta.numeric, ...meta.categorical].join(",") + "\n");
  let lines: string[] = [];
  for (let r = 0; r < n; r++) {
    const cells = data.numeric.map((c) => String(c[r]));
    for (const c of data.categorical) cells.push(meta.labels[c[r]!]!);
    lines.push(cells.join(","));
    if (lines.length === 10_000 || r === n - 1) {
      if (!out.write(lines.join("\n") + "\n")) await once(out, "drain");
      lines = [];
    }
  }
  out.end();
  await once(out, "finish");
  renameSync(`${file}.partial`, file);
}

function writeParquet(file: string, meta: Meta, data: RawColumns): void {
  const columnData = [
    ...meta.numeric.map((name, i) => ({ name, data: data.numeric[i]!, type: "DOUBLE" as const })),
    ...meta.categorical.map((name, i) => ({ name, data: Array.from(data.categorical[i]!, (c) => meta.labels[c]!), type: "STRING" as const })),
  ];
  writeFileSync(file, Buffer.from(parquetWriteBuffer({ columnData, rowGroupSize: 100_000 })));
}

const timeoutSeconds = Number(process.env.CLI_TIMEOUT ?? 300);
const thresholdMode = process.env.CLI_THRESHOLD_MODE ?? "fixed";

/** Runs `ballast drift` from `dist`; wall seconds, and CPU seconds of the process and its threads (from /proc). */
function run(dist: string, ref: string, cur: string): { wall: number; cpu: number; code: number | null; report: string } {
  const out = `${ref}.report-${process.pid}.json`;
  const node = process.execPath;
  // The shell's cutime/cstime (fields 16, 17 of /proc/$$/stat) are the CPU of the children it waited for.
  const script = `timeout ${timeoutSeconds} "$0" "$1/cli/main.js" drift --reference "$2" --current "$3" --threshold-mode "$5" --format json --out "$4" 2>/dev/null; code=$?; cat /proc/$$/stat; exit $code`;
  const start = performance.now();
  const res = spawnSync("/bin/sh", ["-c", script, node, dist, ref, cur, out, thresholdMode], { encoding: "utf8" });
  const wall = (performance.now() - start) / 1000;
  const fields = res.stdout.trim().split(") ")[1]!.split(" ");
  const ticks = Number(fields[13]) + Number(fields[14]);
  const report = existsSync(out) ? readFileSync(out, "utf8") : "";
  rmSync(out, { force: true });
  return { wall, cpu: ticks / 100, code: res.status, report };
}

function drifted(report: string): string {
  if (!report) return `(no report: failed or over ${timeoutSeconds} s)`;
  const json = JSON.parse(report) as { features: { name: string; drift: boolean }[] };
  return json.features
    .filter((f) => f.drift)
    .map((f) => f.name)
    .join(" ");
}

async function main(dir: string, baseline: string | undefined): Promise<void> {
  const meta = readMeta(dir);
  const files = { csv: ["cli-ref.csv", "cli-cur.csv"], parquet: ["cli-ref.parquet", "cli-cur.parquet"] };
  if (![...files.csv, ...files.parquet].every((f) => existsSync(join(dir, f)))) {
    console.log(`writing ${meta.nRef} + ${meta.nCur} rows as CSV and Parquet in ${dir} (once)...`);
    for (const [part, n, i] of [["ref", meta.nRef, 0] as const, ["cur", meta.nCur, 1] as const]) {
      const data = readRawColumns(dir, part, meta);
      await writeCsv(join(dir, files.csv[i]!), meta, data, n);
      writeParquet(join(dir, files.parquet[i]!), meta, data);
    }
  }
  const current = new URL("../../dist", import.meta.url).pathname;
  const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  console.log(`load average at start: ${load()}`);
  const rows: string[] = [];
  for (const format of ["csv", "parquet"] as const) {
    const [ref, cur] = files[format].map((f) => join(dir, f)) as [string, string];
    const mine = run(current, ref, cur);
    const base = baseline ? run(baseline, ref, cur) : undefined;
    const same = base ? drifted(base.report) === drifted(mine.report) : true;
    rows.push(
      [
        format,
        base ? `${base.wall.toFixed(1)} s wall, ${base.cpu.toFixed(1)} s CPU` : "-",
        `${mine.wall.toFixed(1)} s wall, ${mine.cpu.toFixed(1)} s CPU`,
        // A baseline stopped by the time bound (exit 124) took longer than this: the ratio is a lower bound.
        base ? `${base.code === 124 ? "> " : ""}${(base.wall / mine.wall).toFixed(1)}x wall, ${(base.cpu / mine.cpu).toFixed(1)}x CPU` : "-",
        `${drifted(mine.report)}${same ? "" : ` (baseline: ${drifted(base!.report)})`}`,
      ].join(" | "),
    );
    console.log(`${format}: exit ${base ? `${base.code} (baseline), ` : ""}${mine.code}`);
  }
  console.log(
    `\nballast drift --threshold-mode ${thresholdMode}, ${meta.nRef} x ${meta.nCur} rows, ${meta.numeric.length} numeric + ${meta.categorical.length} categorical columns`,
  );
  console.log(`format | baseline (${baseline ?? "none"}) | this build | speed-up | drifted features`);
  for (const row of rows) console.log(row);
  console.log(`load average at end: ${load()}`);
}

await main(process.argv[2] ?? ".", process.argv[3]);
