// Training data read as streams: CSV and JSON Lines row by row (even when a character or a line spans chunks),
// http(s) sources under the same rules as the model store (https, byte cap), and clear errors naming the source.
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { readLines } from "../../../src/runtime/line-reader.js";
import { DataError, loadTable } from "../../../src/training/data.js";
import { useTempDirs } from "../runtime/temp-dirs.js";

const tempDir = useTempDirs("ballast-data-sources-");
const servers: http.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

/** A stream that delivers exactly these chunks, one read each. */
const chunks = (parts: Buffer[]): Readable => Readable.from(parts);

async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe("training data sources, streamed", () => {
  it("splits lines where chunks cut a line or a multi-byte character in two, and reports a last line without newline", async () => {
    const bytes = Buffer.from('{"city":"Zürich","y":"☂"}\n{"city":"Oslo"', "utf8");
    // Cut inside "ü" (2 bytes), inside "☂" (3 bytes), and in the middle of the second line.
    const cuts = [0, bytes.indexOf("ü") + 1, bytes.indexOf("☂") + 1, bytes.indexOf("☂") + 2, bytes.indexOf("Oslo"), bytes.length];
    const out: { text: string; terminated: boolean }[] = [];
    for await (const l of readLines(chunks(cuts.slice(1).map((end, i) => bytes.subarray(cuts[i], end))))) out.push({ text: l.text, terminated: l.terminated });
    expect(out).toEqual([
      { text: '{"city":"Zürich","y":"☂"}', terminated: true },
      { text: '{"city":"Oslo"', terminated: false },
    ]);
  });

  it("skips a line over the length limit without keeping it, and goes on with the next", async () => {
    const out: unknown[] = [];
    // The second line passes 10 characters in the second chunk; the last one in a single chunk.
    for await (const l of readLines(chunks(["short\n" + "x".repeat(8), "x".repeat(8), "x\nafter\n" + "y".repeat(20)].map((t) => Buffer.from(t))), 10))
      out.push(l);
    expect(out).toEqual([
      { text: "short", number: 1, terminated: true },
      { text: "", number: 2, terminated: true, overlong: true },
      { text: "after", number: 3, terminated: true },
      { text: "", number: 4, terminated: false, overlong: true },
    ]);
  });

  it("reads CSV and JSON Lines over http from loopback, and refuses a source over --data-max-bytes while it streams", async () => {
    const csv = "a,b,y\n" + Array.from({ length: 2000 }, (_, i) => `${i},${i % 7},${i % 2 ? "odd" : "even"}`).join("\n") + "\n";
    const base = await serve((req, res) => {
      if (req.url === "/rows.csv") res.end(csv);
      else if (req.url === "/rows.jsonl") res.end('{"a":1,"y":"p"}\n\n{"a":2,"y":"q"}\n');
      else if (req.url === "/endless.jsonl") {
        res.writeHead(200);
        const pump = (): void => {
          while (!res.destroyed && res.write('{"a":1,"y":"p"}\n'.repeat(1000)));
          if (!res.destroyed) res.once("drain", pump);
        };
        pump();
      } else res.writeHead(404).end();
    });
    const table = await loadTable([`${base}/rows.csv`, `${base}/rows.jsonl`]);
    expect(table.rows).toHaveLength(2002);
    expect(table.rows[1999]).toEqual({ a: "1999", b: "4", y: "odd" });
    expect(table.columns).toEqual(["a", "b", "y"]);

    const err = await loadTable([`${base}/endless.jsonl`], { httpMaxBytes: 1024 * 1024 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toMatch(/endless\.jsonl: .*body passed the limit of 1048576 bytes/);
    await expect(loadTable([`${base}/missing.csv`])).rejects.toThrow(/missing\.csv: GET .*404 not found/);
  });

  it("refuses plain http to another host, and names the file and line of bad CSV", async () => {
    await expect(loadTable(["http://data.example/rows.csv"])).rejects.toThrow(
      /data\.example\/rows\.csv: .*plain http to a host other than loopback is refused/,
    );
    const bad = path.join(tempDir(), "bad.csv");
    fs.writeFileSync(bad, 'a,y\n1,p\n2,"q\n');
    await expect(loadTable([bad])).rejects.toThrow(new RegExp(`${bad}(:\\d+)?: invalid CSV`));
  });
});
