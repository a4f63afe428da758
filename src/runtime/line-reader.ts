// Lines of a text stream, one at a time: JSON Lines files and request log segments are read without ever
// holding more than one chunk and one line in memory.
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";

export interface Line {
  /** The line without its newline; empty for an overlong line. */
  text: string;
  /** 1-based line number. */
  number: number;
  /** False only for a last line with no newline after it (a torn write, or a file that simply ends). */
  terminated: boolean;
  /** The line was longer than the limit: its bytes were skipped, not kept. */
  overlong?: true;
}

/** A line longer than this is no line of ours (a binary file, or an endless line): skipped, never buffered. */
export const MAX_LINE_LENGTH = 64 * 1024 * 1024;

/**
 * Splits a byte stream (UTF-8, multi-byte characters across chunks included) into lines. Each chunk is searched
 * once, so a long line costs its length, not its length times its chunks.
 */
export async function* readLines(stream: Readable, maxLineLength = MAX_LINE_LENGTH): AsyncGenerator<Line> {
  const decoder = new StringDecoder("utf8");
  let parts: string[] = [];
  let partsLength = 0;
  let overlong = false;
  let number = 0;
  const line = (last: string, terminated: boolean): Line => {
    const out: Line = overlong ? { text: "", number, terminated, overlong: true } : { text: parts.length ? parts.join("") + last : last, number, terminated };
    parts = [];
    partsLength = 0;
    overlong = false;
    return out;
  };
  for await (const chunk of stream) {
    const text = typeof chunk === "string" ? chunk : decoder.write(chunk as Buffer);
    let start = 0;
    for (let nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", start)) {
      number++;
      if (partsLength + nl - start > maxLineLength) overlong = true;
      yield line(text.slice(start, nl), true);
      start = nl + 1;
    }
    if (start < text.length && !overlong) {
      parts.push(start === 0 ? text : text.slice(start));
      partsLength += text.length - start;
      if (partsLength > maxLineLength) {
        overlong = true;
        parts = [];
      }
    }
  }
  const tail = decoder.end();
  if (tail !== "" && !overlong) parts.push(tail);
  if (partsLength + tail.length > maxLineLength) overlong = true;
  if (overlong || parts.length > 0) {
    number++;
    yield line("", false);
  }
}
