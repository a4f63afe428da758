// `ballast drift` as a user runs it: real files in, a report out, exit code 0 / 1 / 2.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { beforeAll, describe, expect, it } from "vitest";
import { ballastBin as ballast } from "../runtime/local-processes.js";

const weatherCsv = new URL("../../../node_modules/vega-datasets/data/weather.csv", import.meta.url).pathname;
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
        return JSON.stringify({ date, precipitation: Number(precipitation), temp_max: Number(tempMax), temp_min: Number(tempMin), wind: Number(wind), weather });
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
});

describe("ballast drift", () => {
  it("reports Seattle → New York weather as drifted (exit 1) with a table per feature", () => {
    const res = drift("--reference", "seattle.csv", "--current", "newyork.csv", "--features", "precipitation,temp_max,temp_min,wind,weather");
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/^feature\s+type\s+method\s+statistic\s+threshold\s+p-value\s+drift$/m);
    expect(res.stdout).toMatch(/^temp_min\s+numeric\s+wasserstein\s+0\.7674\s+0\.1\s+-\s+DRIFT$/m);
    expect(res.stdout).toMatch(/^weather\s+categorical\s+jensenshannon\s+\S+\s+0\.1\s+-\s+DRIFT$/m);
    expect(res.stdout).toContain("Dataset drift: YES (5 of 5 features drifted, share 1 ≥ 0.5)");
  });

  it("finds no drift between alternate days of Seattle weather in JSON Lines (exit 0), JSON output has the documented fields", () => {
    const res = drift("--reference", "seattle-even-days.jsonl", "--current", "seattle-odd-days.jsonl", "--features", "temp_max,wind,weather", "--format", "json");
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
    const res = drift("--reference", "seattle.csv", "--current", "newyork.csv", "--features", "temp_max", "--method", "ks", "--mode", "exact", "--format", "json");
    const [f] = JSON.parse(res.stdout).features;
    expect(f).toMatchObject({ method: "ks", approximate: false, drift: true });
    expect(f.pValue).toBeLessThan(1e-6);
    const sketched = JSON.parse(drift("--reference", "seattle.csv", "--current", "newyork.csv", "--features", "temp_max", "--mode", "sketch", "--format", "json").stdout);
    expect(sketched.features[0]).toMatchObject({ approximate: true, method: "wasserstein" });
  });

  it("reads Parquet", () => {
    const res = drift("--reference", "seattle.parquet", "--current", "newyork.parquet", "--format", "json");
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout).features.map((f: { name: string; type: string }) => `${f.name}:${f.type}`)).toEqual(["temp_max:numeric", "weather:categorical"]);
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
  ])("bad input %j exits 2 naming the problem", (args, message) => {
    writeFileSync(join(dir, "bad.jsonl"), '{"a":1,"b":"x"}\n{"a":2,}\n');
    writeFileSync(join(dir, "short.csv"), "a,b\n1,x\n2\n");
    writeFileSync(join(dir, "other.csv"), "c,d\n1,2\n");
    writeFileSync(join(dir, "letters.csv"), "a,b\n1,x\nabc,y\n");
    const res = drift(...args);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(message);
  });

  it("has a --help that explains exit codes and the auto rule", () => {
    const res = spawnSync(ballast, ["drift", "--help"], { encoding: "utf8" });
    expect(res.status).toBe(0);
    expect(res.stdout).toContain("Exit codes: 0 no dataset drift, 1 dataset drift, 2 bad input");
    expect(res.stdout).toContain("--mode <mode>");
  });
});
