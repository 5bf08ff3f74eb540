/** `-` as a file argument: read the command's standard input (`validate -`, `preview --event -`; `--events -` is peeked). */
import { Readable } from 'node:stream';
import { CliError, EXIT, type CliIO } from './io.js';
import { convertHint, jsonDocumentMessage } from './ndjson.js';

const MAX_STDIN_BYTES = 16 * 1024 * 1024;

export async function readStdin(io: CliIO, what: string): Promise<Buffer> {
  if (!io.stdin) throw new CliError(`cannot read ${what} from standard input here`, EXIT.usage);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > MAX_STDIN_BYTES) throw new CliError(`${what} on standard input is larger than ${MAX_STDIN_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** Standard input is read ahead at most this far to tell one pretty-printed JSON document from NDJSON. */
const JSON_DOCUMENT_PEEK_BYTES = 16 * 1024 * 1024;

/**
 * `--events -`: a pretty-printed JSON document (or a JSON array) piped in would become one `invalid_event`
 * per physical line; say so once instead, like an events file. Only when the first line opens a document
 * it does not close is more read ahead: until the text so far parses as one document (the problem), two
 * lines in a row parse on their own (NDJSON after all: go on), the input ends, or the peek limit. What was
 * read ahead is given back in front of the rest, so nothing is lost and NDJSON still streams.
 */
export async function peekJsonDocument(stdin: Readable): Promise<{ source: Readable; problem?: string }> {
  const it = stdin[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const chunks: Buffer[] = [];
  let text = '';
  let ended = false;
  const more = async (): Promise<boolean> => {
    const r = await it.next();
    if (r.done) return !(ended = true);
    const b = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    chunks.push(b);
    text += b.toString('utf8');
    return true;
  };
  const problem = async (): Promise<string | undefined> => {
    while (!text.includes('\n') && (await more()));
    const first = text.split('\n', 1)[0]!.trim();
    if (!first.startsWith('{') && !first.startsWith('[')) return undefined;
    try {
      const doc: unknown = JSON.parse(first);
      return Array.isArray(doc) ? `standard input starts with a JSON array, not one event per line (NDJSON): ${convertHint(true, 'stdin')}` : undefined;
    } catch {
      // a document that goes on over the next lines, or a malformed NDJSON line: read on
    }
    let checked = text.indexOf('\n') + 1;
    let alone = 0;
    for (;;) {
      for (let nl = text.indexOf('\n', checked); nl !== -1; nl = text.indexOf('\n', checked)) {
        const line = text.slice(checked, nl).trim();
        checked = nl + 1;
        if (/^[}\]]/.test(line)) {
          const found = jsonDocumentMessage(text.slice(0, nl), 'standard input', 'stdin');
          if (found) return found;
        }
        alone = line.startsWith('{') && parses(line) ? alone + 1 : 0;
        if (alone >= 2) return undefined;
      }
      if (text.length > JSON_DOCUMENT_PEEK_BYTES || !(await more())) break;
    }
    return jsonDocumentMessage(text, 'standard input', 'stdin');
  };
  const found = await problem();
  if (found) {
    void it.return?.();
    return { source: stdin, problem: found };
  }
  const source = Readable.from(
    (async function* () {
      yield* chunks;
      while (!ended) {
        const r = await it.next();
        if (r.done) return;
        yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
      }
    })(),
    { objectMode: false },
  );
  // Destroying what the reader got releases standard input too.
  source.once('close', () => void it.return?.());
  return { source, problem: undefined };
}

function parses(line: string): boolean {
  try {
    JSON.parse(line);
    return true;
  } catch {
    return false;
  }
}
