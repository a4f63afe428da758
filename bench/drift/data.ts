// bench/drift: the data baselines.py generates (meta.json and raw little-endian columns), read back column by column.
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface Meta {
  nRef: number;
  nCur: number;
  numeric: string[];
  categorical: string[];
  labels: string[];
}

export function readMeta(dir: string): Meta {
  return JSON.parse(readFileSync(join(dir, "meta.json"), "utf8")) as Meta;
}

/** One part's columns: the numeric ones as Float64Arrays, the categorical ones as label codes. */
export function readRawColumns(dir: string, part: "ref" | "cur", meta: Meta): { numeric: Float64Array[]; categorical: Uint8Array[] } {
  const n = part === "ref" ? meta.nRef : meta.nCur;
  const num = new Float64Array(readFileSync(join(dir, `${part}_num.f64`)).buffer.slice(0));
  const cat = new Uint8Array(readFileSync(join(dir, `${part}_cat.u8`)));
  return {
    numeric: meta.numeric.map((_, i) => num.subarray(i * n, (i + 1) * n)),
    categorical: meta.categorical.map((_, i) => cat.subarray(i * n, (i + 1) * n)),
  };
}
