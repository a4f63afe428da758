// `ballast drift` as a user runs it: real files in, a report out, exit code 0 / 1 / 2.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { beforeAll, describe, expect, it } from "vitest";
import { ballastBin as ballast } from "../runtime/local-processes.js";

const weatherCsv = new URL("../../../node_modules/vega-datasets/data/weather.csv", import.meta.url).pathname;
const vega = (file: string) => new URL(`../../../node_modules/vega-datasets/data/${file}`, import.meta.url).pathname;
let dir: string;

function drift(...args: string[]) {
  const res = spawnSync(ballast, ["drift", ...args], { encoding: "utf8", cwd: dir });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "ballast-drift-"));
  // Real covariate drift: Seattle's weather as reference, New York's as current.
  const [header, ...lines] = readFileSync(weatherCsv, "utf8").trim().split("\n");
  writeFileSync(join(dir, "seattle.csv"), [header, ...lines.filter((l) => l.startsWith("Seattle"))].join("\n") + "\n");
  writeFileSync(join(dir, "newyork.csv"), [header, ...lines.filter((l) => l.startsWith("New York"))].join("\n") + "\n");
  // Alternate days of the same city and years: same seasons, so no drift.
  const seattle = lines.filter((l) => l.startsWith("Seattle"));
  const seattleEven = seattle.filter((_, i) => i % 2 === 0);
  const seattleOdd = seattle.filter((_, i) => i % 2 === 1);
  const toJsonl = (rows: string[]) =>
    rows
      .map((l) => {
        const [, date, precipitation, tempMax, tempMin, wind, weather] = l.split(",");
        return JSON.stringify({
          date,
          precipitation: Number(precipitation),
          temp_max: Number(tempMax),
          temp_min: Number(tempMin),
          wind: Number(wind),
          weather,
        });
      })
      .join("\n") + "\n";
  writeFileSync(join(dir, "seattle-even-days.jsonl"), toJsonl(seattleEven));
  writeFileSync(join(dir, "seattle-odd-days.jsonl"), toJsonl(seattleOdd));
  const parquet = (rows: string[]) =>
    Buffer.from(
      parquetWriteBuffer({
        columnData: [
          { name: "temp_max", data: rows.map((l) => Number(l.split(",")[3])), type: "DOUBLE" },
          { name: "weather", data: rows.map((l) => l.split(",")[6]!), type: "STRING" },
        ],
      }),
    );
  writeFileSync(join(dir, "seattle.parquet"), parquet(lines.filter((l) => l.startsWith("Seattle"))));
  writeFileSync(join(dir, "newyork.parquet"), parquet(lines.filter((l) => l.startsWith("New York"))));
  writeFileSync(join(dir, "ok.csv"), "a,b\n1,x\n2,y\n");
  // January 2001 flights split at random into halves (seeded): 171 origin and 179 destination airports.
  const january = (JSON.parse(readFileSync(vega("flights-10k.json"), "utf8")) as { date: string }[]).filter((r) => r.date.startsWith("2001/01"));
  let seed = 42;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  const shuffled = january
    .map((r) => [random(), r] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([, r]) => r);
  const half = Math.floor(shuffled.length / 2);
  writeFileSync(join(dir, "flights-a.json"), JSON.stringify(shuffled.slice(0, half)));
  writeFileSync(join(dir, "flights-b.json"), JSON.stringify(shuffled.slice(half)));
  const cars = JSON.parse(readFileSync(vega("cars.json"), "utf8")) as { Origin: string }[];
  writeFileSync(join(dir, "cars-usa.json"), JSON.stringify(cars.filter((c) => c.Origin === "USA")));
  writeFileSync(join(dir, "cars-japan.json"), JSON.stringify(cars.filter((c) => c.Origin === "Japan")));
});

describe("ballast drift", () => {
  it("reports Seattle → New York weather as drifted under calibrated thresholds (the default), each feature above its no-drift quantile", () => {
    const res = drift("--reference", "seattle.csv", "--current", "newyork.csv", "--features", "precipitation,temp_max,temp_min,wind,weather");
    expect(res.code).toBe(1);
    expect(res.stdout).toContain("thresholds calibrated (99% quantile of 200 permutations of both files)");
    // Same statistic as under fixed thresholds; the threshold is the permutation quantile.
    expect(res.stdout).toMatch(/^temp_min\s+numeric\s+wasserstein\s+0\.7674\s+0\.0\d+ \(cal\.\)\s+-\s+DRIFT$/m);
    expect(res.stdout).toMatch(/^weather\s+categorical\s+jensenshannon\s+\S+\s+0\.0\d+ \(cal\.\)\s+-\s+DRIFT$/m);
    expect(res.stdout).toContain("Dataset drift: YES (5 of 5 features drifted, share 1 ≥ 0.5)");
  });

  it("does not call two random halves of January's flights drift (171 airports), where the fixed 0.1 threshold does", () => {
    const calibrated = drift(
      "--reference",
      "flights-a.json",
      "--current",
      "flights-b.json",
      "--features",
      "delay,distance,origin,destination",
      "--format",
      "json",
    );
    expect(calibrated.stderr).toBe("");
    expect(calibrated.code).toBe(0);
    const report = JSON.parse(calibrated.stdout);
    const origin = report.features.find((f: { name: string }) => f.name === "origin");
    // Jensen–Shannon of two samples of 1727 rows over ~170 airports is ~0.2 by sampling noise alone.
    expect(origin).toMatchObject({ method: "jensenshannon", thresholdMode: "calibrated", drift: false });
    expect(origin.statistic).toBeGreaterThan(0.1);
    expect(origin.statistic).toBeLessThan(origin.threshold);
    const fixed = drift(
      "--reference",
      "flights-a.json",
      "--current",
      "flights-b.json",
      "--features",
      "delay,distance,origin,destination",
      "--threshold-mode",
      "fixed",
      "--format",
      "json",
    );
    expect(fixed.code).toBe(1);
    expect(
      JSON.parse(fixed.stdout)
        .features.filter((f: { drift: boolean }) => f.drift)
        .map((f: { name: string }) => f.name),
    ).toEqual(["origin", "destination"]);
  });

  it("still calls USA → Japan cars drift under calibrated thresholds", () => {
    const res = drift(
      "--reference",
      "cars-usa.json",
      "--current",
      "cars-japan.json",
      "--features",
      "Miles_per_Gallon,Displacement,Horsepower,Weight_in_lbs,Acceleration",
      "--format",
      "json",
    );
    expect(res.code).toBe(1);
    const report = JSON.parse(res.stdout);
    expect(report.features.every((f: { drift: boolean; thresholdMode: string }) => f.drift && f.thresholdMode === "calibrated")).toBe(true);
  });

  it("reports Seattle → New York weather as drifted (exit 1) with a table per feature under --threshold-mode fixed", () => {
    const res = drift(
      "--reference",
      "seattle.csv",
      "--current",
      "newyork.csv",
      "--features",
      "precipitation,temp_max,temp_min,wind,weather",
      "--threshold-mode",
      "fixed",
    );
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^feature\s+type\s+method\s+statistic\s+threshold\s+p-value\s+drift$/m);
    expect(res.stdout).toMatch(/^temp_min\s+numeric\s+wasserstein\s+0\.7674\s+0\.1\s+-\s+DRIFT$/m);
    expect(res.stdout).toMatch(/^weather\s+categorical\s+jensenshannon\s+\S+\s+0\.1\s+-\s+DRIFT$/m);
    expect(res.stdout).toContain("Dataset drift: YES (5 of 5 features drifted, share 1 ≥ 0.5)");
  });

  it("finds no drift between alternate days of Seattle weather in JSON Lines (exit 0), JSON output has the documented fields", () => {
    const res = drift(
      "--reference",
      "seattle-even-days.jsonl",
      "--current",
      "seattle-odd-days.jsonl",
      "--features",
      "temp_max,wind,weather",
      "--format",
      "json",
    );
    expect(res.code).toBe(0);
    const report = JSON.parse(res.stdout);
    expect(report).toMatchObject({ drift: false, status: "evaluated" });
    expect(typeof report.driftShare).toBe("number");
    for (const f of report.features) {
      expect(Object.keys(f)).toEqual(expect.arrayContaining(["name", "type", "method", "statistic", "pValue", "threshold", "drift"]));
      expect(["numeric", "categorical"]).toContain(f.type);
    }
    expect(report.features.map((f: { name: string; type: string }) => [f.name, f.type])).toEqual([
      ["temp_max", "numeric"],
      ["wind", "numeric"],
      ["weather", "categorical"],
    ]);
  });

  it("honours --method, --mode and gives p-values for KS", () => {
    const res = drift(
      "--reference",
      "seattle.csv",
      "--current",
      "newyork.csv",
      "--features",
      "temp_max",
      "--method",
      "ks",
      "--mode",
      "exact",
      "--format",
      "json",
    );
    const [f] = JSON.parse(res.stdout).features;
    expect(f).toMatchObject({ method: "ks", approximate: false, drift: true });
    expect(f.pValue).toBeLessThan(1e-6);
    const sketched = JSON.parse(
      drift("--reference", "seattle.csv", "--current", "newyork.csv", "--features", "temp_max", "--mode", "sketch", "--format", "json").stdout,
    );
    expect(sketched.features[0]).toMatchObject({ approximate: true, method: "wasserstein" });
  });

  it("reads Parquet", () => {
    const res = drift("--reference", "seattle.parquet", "--current", "newyork.parquet", "--format", "json");
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout).features.map((f: { name: string; type: string }) => `${f.name}:${f.type}`)).toEqual([
      "temp_max:numeric",
      "weather:categorical",
    ]);
  });

  it("reads Parquet nulls as missing cells and integer columns as numbers", () => {
    const file = (shift: number) =>
      Buffer.from(
        parquetWriteBuffer({
          columnData: [
            { name: "x", data: Array.from({ length: 40 }, (_, i) => (i % 4 === 0 ? null : i + shift)), type: "DOUBLE" },
            { name: "n", data: Int32Array.from({ length: 40 }, (_, i) => i % 5), type: "INT32" },
          ],
        }),
      );
    writeFileSync(join(dir, "nulls-ref.parquet"), file(0));
    writeFileSync(join(dir, "nulls-cur.parquet"), file(0.5));
    const report = JSON.parse(drift("--reference", "nulls-ref.parquet", "--current", "nulls-cur.parquet", "--format", "json").stdout);
    expect(
      report.features.map((f: { name: string; type: string; referenceCount: number; currentMissingShare: number }) => [
        f.name,
        f.type,
        f.referenceCount,
        f.currentMissingShare,
      ]),
    ).toEqual([
      ["x", "numeric", 30, 0.25],
      ["n", "numeric", 40, 0],
    ]);
  });

  it("writes one self-contained HTML file with a histogram per feature", () => {
    const res = drift("--reference", "seattle.csv", "--current", "newyork.csv", "--features", "temp_max,weather", "--format", "html", "--out", "report.html");
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("wrote report.html: dataset drift YES");
    const html = readFileSync(join(dir, "report.html"), "utf8");
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html.match(/<svg /g)).toHaveLength(2);
    expect(html).not.toMatch(/<script|<link|src="http/);
  });

  it.each([
    [["--reference", "missing.csv", "--current", "ok.csv"], /--reference missing\.csv: file not found/],
    [["--reference", "ok.csv", "--current", "bad.jsonl"], /bad\.jsonl line 2, column 8: not valid JSON/],
    [["--reference", "ok.csv", "--current", "short.csv"], /short\.csv line 3: /],
    [["--reference", "ok.csv", "--current", "other.csv"], /ok\.csv and other\.csv have no column in common/],
    [["--reference", "ok.csv", "--current", "letters.csv", "--types", "a=numeric"], /letters\.csv line 3, column "a": "abc" is not a number/],
    [["--reference", "ok.csv", "--current", "ok.csv", "--features", "zzz"], /ok\.csv: has no column "zzz"/],
    [["--reference", "ok.csv", "--current", "ok.xlsx"], /ok\.xlsx: cannot tell the format/],
    [["--reference", "ok.csv", "--current", "ok.csv", "--method", "bogus"], /argument 'bogus' is invalid/],
    [
      ["--reference", "ok.csv", "--current", "ok.csv", "--correction", "bonferroni"],
      /--correction bonferroni adjusts fixed p-value thresholds: add --threshold-mode fixed/,
    ],
    [["--reference", "ok.csv", "--current", "ok.csv", "--threshold-mode", "loose"], /argument 'loose' is invalid/],
  ])("bad input %j exits 2 naming the problem", (args, message) => {
    writeFileSync(join(dir, "bad.jsonl"), '{"a":1,"b":"x"}\n{"a":2,}\n');
    writeFileSync(join(dir, "short.csv"), "a,b\n1,x\n2\n");
    writeFileSync(join(dir, "other.csv"), "c,d\n1,2\n");
    writeFileSync(join(dir, "letters.csv"), "a,b\n1,x\nabc,y\n");
    const res = drift(...args);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
  });

  it("reads quoted CSV fields holding commas, quotes and newlines as one cell, and leaves blank and NaN cells out of a numeric column's values", () => {
    // 4 data rows; "b" has a comma, a doubled quote and a line break inside quotes; "n" has a blank and a NaN.
    writeFileSync(join(dir, "quoted-ref.csv"), 'n,b\n1,"Smith, J."\n2,"say ""hi"""\n,"two\nlines"\nNaN,plain\n');
    writeFileSync(join(dir, "quoted-cur.csv"), 'n,b\n1,"Smith, J."\n3,"say ""hi"""\n4,"two\nlines"\n5,plain\n');
    const res = drift("--reference", "quoted-ref.csv", "--current", "quoted-cur.csv", "--threshold-mode", "fixed", "--format", "json");
    expect(res.stderr).toBe("");
    const report = JSON.parse(res.stdout);
    expect(report.reference.rows).toBe(4);
    const [n, b] = report.features;
    expect(n).toMatchObject({ name: "n", type: "numeric", referenceCount: 2, currentCount: 4 });
    // The same four values each side, so nothing unseen: the quoted cells were read whole.
    expect(b).toMatchObject({ name: "b", type: "categorical", referenceCount: 4, unseenShare: 0 });
    // A record after a quoted line break: the error names the line it ends on.
    writeFileSync(join(dir, "quoted-bad.csv"), 'n,b\n1,"two\nlines"\nabc,x\n');
    const bad = drift("--reference", "quoted-ref.csv", "--current", "quoted-bad.csv", "--types", "n=numeric");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('quoted-bad.csv line 4, column "n": "abc" is not a number');
    writeFileSync(join(dir, "unclosed.csv"), 'n,b\n1,"never closed\n2,x\n');
    expect(drift("--reference", "quoted-ref.csv", "--current", "unclosed.csv").stderr).toMatch(/unclosed\.csv line 2: a quoted field is never closed/);
  });

  it("counts a column a JSON line leaves out as missing in that row", () => {
    writeFileSync(join(dir, "sparse-ref.jsonl"), '{"x":1,"y":"a"}\n{"x":2}\n{"y":"b","x":3}\n{"x":4,"y":"a"}\n');
    writeFileSync(join(dir, "sparse-cur.jsonl"), '{"x":1}\n{"x":2}\n{"y":"a","x":3}\n{"x":4}\n');
    const report = JSON.parse(drift("--reference", "sparse-ref.jsonl", "--current", "sparse-cur.jsonl", "--format", "json").stdout);
    expect(
      report.features.map((f: { name: string; referenceCount: number; currentMissingShare: number }) => [f.name, f.referenceCount, f.currentMissingShare]),
    ).toEqual([
      ["x", 4, 0],
      ["y", 3, 0.75],
    ]);
  });

  it("profiles a column as written when it is numbers in one file and text in the other (1.50 is not the category 1.5)", () => {
    writeFileSync(join(dir, "written-ref.csv"), "v\n1.50\n2\n1.50\n");
    writeFileSync(join(dir, "written-cur.csv"), "v\n1.5\n2.0\nn/a\n");
    const [v] = JSON.parse(drift("--reference", "written-ref.csv", "--current", "written-cur.csv", "--format", "json").stdout).features;
    expect(v).toMatchObject({ type: "categorical", unseenShare: 1 });
  });

  it("gives the same report on one thread and on worker threads", () => {
    const args = ["--reference", "seattle.csv", "--current", "newyork.csv", "--mode", "sketch", "--threshold-mode", "fixed", "--format", "json"];
    const one = drift(...args, "--threads", "1");
    const four = drift(...args, "--threads", "4");
    expect(one.code).toBe(1);
    expect(four.stdout).toBe(one.stdout);
    expect(drift(...args, "--threads", "0").stderr).toMatch(/--threads must be "auto" or a whole number ≥ 1, got "0"/);
  });

  it("has a --help that explains exit codes and the auto rule", () => {
    const res = spawnSync(ballast, ["drift", "--help"], { encoding: "utf8" });
    expect(res.status).toBe(0);
    expect(res.stdout).toContain("Exit codes: 0 no dataset drift, 1 dataset drift, 2 bad input");
    expect(res.stdout).toContain("--mode <mode>");
  });
});
