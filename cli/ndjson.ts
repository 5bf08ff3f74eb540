/**
 * Split a byte stream into lines without ever holding more than one line (plus one chunk) in memory.
 * A line longer than the limit is not buffered: its bytes are counted and dropped up to the next newline.
 * `\n` ends a line; a `\r` before it is dropped. A last line without a newline still counts; a final
 * newline does not start an extra empty line.
 */
import type { Readable } from 'node:stream';

export type RawLine =
  /** The line's bytes, without the newline. */
  | { bytes: Uint8Array; oversized?: undefined }
  /** The line was longer than the limit: only its length is known. */
  | { oversized: number; bytes?: undefined };

export async function* readLines(source: AsyncIterable<Buffer | Uint8Array | string> | Readable, maxBytes: number): AsyncGenerator<RawLine> {
  let parts: Buffer[] = [];
  let length = 0;
  let discarding = false;
  let discarded = 0;

  const finish = (): RawLine => {
    if (discarding) {
      const n = discarded;
      discarding = false;
      discarded = 0;
      return { oversized: n };
    }
    let line = parts.length === 1 ? parts[0]! : Buffer.concat(parts, length);
    parts = [];
    length = 0;
    if (line.length && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    // The limit applies to the content; a CR of a CRLF line is not counted.
    if (line.length > maxBytes) return { oversized: line.length };
    return { bytes: line };
  };

  const take = (piece: Buffer): void => {
    if (discarding) {
      discarded += piece.length;
      return;
    }
    // +1: a trailing CR may still be stripped.
    if (length + piece.length > maxBytes + 1) {
      discarding = true;
      discarded = length + piece.length;
      parts = [];
      length = 0;
      return;
    }
    if (piece.length) {
      // Copy: the stream may reuse its chunk buffers.
      parts.push(Buffer.from(piece));
      length += piece.length;
    }
  };

  for await (const chunk of source as AsyncIterable<Buffer | Uint8Array | string>) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(0x0a, start);
      if (nl === -1) {
        take(buf.subarray(start));
        break;
      }
      take(buf.subarray(start, nl));
      yield finish();
      start = nl + 1;
    }
  }
  if (discarding || length > 0) yield finish();
}

/** How to turn a JSON document (or array of events) into NDJSON, for the input named `shown`. */
export function convertHint(array: boolean, shown: string): string {
  const filter = array ? '.[]' : '.';
  return shown === 'stdin'
    ? `convert it to one event per line, e.g. pipe it through jq -c '${filter}'`
    : `convert it to one event per line, e.g. jq -c '${filter}' ${shown} > events.ndjson`;
}

/**
 * When `text` (several lines) is one JSON document, what to tell the user instead of one `invalid_event`
 * per physical line; undefined when it is not one document (each line then gets its own outcome).
 */
export function jsonDocumentMessage(text: string, input: string, shown: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  const lines = text.split('\n').filter((l) => l.trim()).length;
  if (lines < 2 && !Array.isArray(doc)) return undefined;
  const what = Array.isArray(doc) ? `one JSON array of ${doc.length} item${doc.length === 1 ? '' : 's'}` : 'one JSON document';
  return `${input} is ${what} spread over ${lines} line${lines === 1 ? '' : 's'}, not one event per line (NDJSON): ${convertHint(Array.isArray(doc), shown)}`;
}
