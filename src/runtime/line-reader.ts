// Lines of a text stream, one at a time: JSON Lines files and request log segments are read without ever
// holding more than one chunk and one line in memory.
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";

export interface Line {
  text: string;
  /** 1-based line number. */
  number: number;
  /** False only for a last line with no newline after it (a torn write, or a file that simply ends). */
  terminated: boolean;
}

/** A line longer than this is no line of ours (a binary file, or an endless one): refused, not buffered. */
export const MAX_LINE_LENGTH = 64 * 1024 * 1024;

export class LineTooLongError extends Error {
  constructor(readonly number: number, max: number) {
    super(`line ${number} is longer than ${max} characters`);
    this.name = "LineTooLongError";
  }
}

/** Splits a byte stream (UTF-8, multi-byte characters across chunks included) into lines. */
export async function* readLines(stream: Readable, maxLineLength = MAX_LINE_LENGTH): AsyncGenerator<Line> {
  const decoder = new StringDecoder("utf8");
  let rest = "";
  let number = 0;
  for await (const chunk of stream) {
    const text = rest + (typeof chunk === "string" ? chunk : decoder.write(chunk as Buffer));
    let start = 0;
    for (let nl = text.indexOf("\n", start); nl !== -1; nl = text.indexOf("\n", start)) {
      yield { text: text.slice(start, nl), number: ++number, terminated: true };
      start = nl + 1;
    }
    rest = text.slice(start);
    if (rest.length > maxLineLength) throw new LineTooLongError(number + 1, maxLineLength);
  }
  rest += decoder.end();
  if (rest !== "") yield { text: rest, number: number + 1, terminated: false };
}
