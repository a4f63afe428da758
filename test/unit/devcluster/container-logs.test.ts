// Given a container's log file, the kubelet API's query options select what `kubectl logs` prints.
import { appendFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { LogRequestError, parseLogOptions, streamLog, tailOffset, type LogOptions } from "../../../src/devcluster/container-logs.js";

function logFile(content: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "h11-logs-")), "0.log");
  writeFileSync(file, content);
  return file;
}

async function read(file: string, options: Partial<LogOptions>, running?: Promise<unknown>): Promise<string> {
  const chunks: Buffer[] = [];
  await streamLog(file, { follow: false, previous: false, ...options }, running, { write: (c) => chunks.push(c), closed: false });
  return Buffer.concat(chunks).toString();
}

describe("the log options of GET /containerLogs", () => {
  it("reads follow, previous, tailLines (or the older tail) and limitBytes as the kubelet does", () => {
    expect(parseLogOptions(new URLSearchParams("follow=true&previous=1&tailLines=3&limitBytes=10"))).toEqual({
      follow: true,
      previous: true,
      tailLines: 3,
      limitBytes: 10,
    });
    expect(parseLogOptions(new URLSearchParams("follow=false&tail=7"))).toEqual({ follow: false, previous: false, tailLines: 7 });
    expect(parseLogOptions(new URLSearchParams("tail=all"))).toEqual({ follow: false, previous: false });
  });

  it("refuses a negative tail, a zero byte limit, a non-number, and the times it cannot know, with a status and a reason", () => {
    const refusal = (q: string) => {
      try {
        parseLogOptions(new URLSearchParams(q));
      } catch (err) {
        return err instanceof LogRequestError ? [err.status, err.message] : err;
      }
      return undefined;
    };
    expect(refusal("tailLines=-1")).toEqual([422, "tailLines must be at least 0, got -1"]);
    expect(refusal("limitBytes=0")).toEqual([422, "limitBytes must be at least 1, got 0"]);
    expect(refusal("tailLines=ten")).toEqual([400, "tailLines=ten is not an integer"]);
    expect(refusal("timestamps=true")).toEqual([400, expect.stringContaining("timestamps are not supported on ballast local nodes")]);
    expect(refusal("sinceSeconds=10")).toEqual([400, expect.stringContaining("sinceSeconds is not supported on ballast local nodes")]);
  });
});

describe("reading a container's log", () => {
  it("gives the last n lines with a tail, counting a last line without its newline, and stops at limitBytes", async () => {
    const file = logFile("a\nb\nc\n");
    expect(await read(file, { tailLines: 2 })).toBe("b\nc\n");
    expect(await read(file, { tailLines: 0 })).toBe("");
    expect(await read(file, { tailLines: 10 })).toBe("a\nb\nc\n");
    expect(await read(logFile("a\nb\npartial"), { tailLines: 1 })).toBe("partial");
    expect(await read(file, { limitBytes: 3 })).toBe("a\nb");
  });

  it("finds the tail of a log larger than one read block", () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i + 1}\n`);
    const file = logFile(lines.join(""));
    expect(tailOffset(file, 3)).toBe(lines.slice(0, -3).join("").length);
  });

  it("with follow, writes what is appended while the container runs, and ends once it exited and all is read", async () => {
    const file = logFile("first\n");
    let exit!: () => void;
    const running = new Promise<void>((resolve) => (exit = resolve));
    const reading = read(file, { follow: true }, running);
    await sleep(300);
    appendFileSync(file, "second\n");
    await sleep(300);
    appendFileSync(file, "last\n");
    exit();
    expect(await reading).toBe("first\nsecond\nlast\n");
  });
});
