/** `-` as a file argument: read the command's standard input (for `validate -` and `preview --event -`). */
import { CliError, EXIT, type CliIO } from './io.js';

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
