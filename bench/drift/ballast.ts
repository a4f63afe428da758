// bench/drift, Ballast side: times exact and sketch drift reports on the data baselines.py generated.
// Run by bench/drift/run.sh after `make build` (imports the compiled engine from dist/).
import { writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { readMeta, readRawColumns, type Meta } from "./data.ts";

type Monitoring = typeof import("../../src/monitoring/index.js");

function columns(dir: string, part: "ref" | "cur", meta: Meta): Record<string, ArrayLike<unknown>> {
  const raw = readRawColumns(dir, part, meta);
  const out: Record<string, ArrayLike<unknown>> = {};
  meta.numeric.forEach((name, i) => (out[name] = raw.numeric[i]!));
  meta.categorical.forEach((name, i) => (out[name] = Array.from(raw.categorical[i]!, (code) => meta.labels[code]!)));
  return out;
}

function threadCpuSeconds(): number {
  const { user, system } = process.threadCpuUsage();
  return (user + system) / 1e6;
}

function seconds(since: number): number {
  return (performance.now() - since) / 1000;
}

async function main(dir: string): Promise<void> {
  const m: Monitoring = await import(new URL("../../dist/monitoring/index.js", import.meta.url).href);
  const meta = readMeta(dir);
  const schema = [
    ...meta.numeric.map((name) => ({ name, type: "numeric" as const })),
    ...meta.categorical.map((name) => ({ name, type: "categorical" as const })),
  ];
  const ref = columns(dir, "ref", meta);
  const cur = columns(dir, "cur", meta);
  const drifted = (r: ReturnType<Monitoring["compare"]>) =>
    r.features
      .filter((f) => f.drift)
      .map((f) => f.name)
      .sort();

  let t = performance.now();
  const exact = m.compare(
    m.DatasetProfile.fromColumns(schema, ref, { exactLimit: Infinity }),
    m.DatasetProfile.fromColumns(schema, cur, { exactLimit: Infinity }),
  );
  const exactSeconds = seconds(t);

  t = performance.now();
  const cpu = threadCpuSeconds();
  const refSketch = m.DatasetProfile.fromColumns(schema, ref, { exactLimit: 0 });
  const curSketch = m.DatasetProfile.fromColumns(schema, cur, { exactLimit: 0 });
  const sketch = m.compare(refSketch, curSketch);
  const sketchSeconds = seconds(t);
  // CPU seconds of this thread: what the work costs whatever else the machine runs (wall time is that share).
  const sketchCpuSeconds = threadCpuSeconds() - cpu;

  // The same on every core: numeric columns spread over worker threads (the same profiles, bit for bit).
  const threads = availableParallelism();
  t = performance.now();
  const [refParallel, curParallel] = await Promise.all([
    m.profileColumnsInParallel(schema, ref, { exactLimit: 0, threads }),
    m.profileColumnsInParallel(schema, cur, { exactLimit: 0, threads }),
  ]);
  const parallel = m.compare(refParallel, curParallel);
  const parallelSeconds = seconds(t);
  if (JSON.stringify(parallel) !== JSON.stringify(sketch)) throw new Error("the parallel sketch report differs from the one-thread one");

  // The operator's path: the reference profile is stored (metadata.json), the current one arrives as JSON.
  const refStored = JSON.stringify(refSketch.toJSON());
  const curStored = JSON.stringify(curSketch.toJSON());
  t = performance.now();
  m.compare(m.DatasetProfile.fromJSON(JSON.parse(refStored)), m.DatasetProfile.fromJSON(JSON.parse(curStored)));
  const sketchCompareSeconds = seconds(t);

  // Ingest throughput: numeric values into KLL sketches, one core.
  const values = meta.numeric.map((name) => ref[name] as Float64Array);
  t = performance.now();
  for (const column of values) {
    const p = new m.NumericProfile({ exactLimit: 0 });
    p.addNumbers(column);
    p.points();
  }
  const ingestValuesPerSecond = (values.length * meta.nRef) / seconds(t);

  const numericBytes = meta.numeric.map((name) => JSON.stringify(refSketch.feature(name)!.toJSON()).length);
  const result = {
    tool: "ballast",
    exactSeconds,
    sketchSeconds,
    sketchCpuSeconds,
    parallelSeconds,
    threads,
    referenceRows: meta.nRef,
    sketchCompareSeconds,
    ingestValuesPerSecond,
    bytesPerNumericProfile: Math.round(numericBytes.reduce((a, b) => a + b, 0) / numericBytes.length),
    maxBytesPerNumericProfile: Math.max(...numericBytes),
    bytesPerCategoricalProfile: JSON.stringify(refSketch.feature(meta.categorical[0]!)!.toJSON()).length,
    exactDrifted: drifted(exact),
    sketchDrifted: drifted(sketch),
    methods: [...new Set(exact.features.map((f) => f.method))],
  };
  writeFileSync(join(dir, "result-ballast.json"), JSON.stringify(result));
  console.log(JSON.stringify(result));
}

await main(process.argv[2] ?? ".");
