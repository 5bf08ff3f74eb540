/** `preview`: the exact requests an event would produce for an integration record, secrets redacted; sends nothing. */
import type { Command } from 'commander';
import { DeliveryError, parseEventLine, parseJsonSafely, REASONS, type IntegrationRecord } from '../../engine/index.js';
import { loadEngine, type Context } from '../context.js';
import { requestBlock } from '../format.js';
import { CliError, displayPath, EXIT, readJsonFile, readSmallFile, resolvePath } from '../io.js';
import { readStdin } from '../stdin.js';
import { safe } from '../text.js';

interface PreviewOptions {
  integration: string;
  event: string;
  json?: boolean;
  endpoint?: string;
}

export function registerPreview(program: Command, ctx: Context): void {
  program
    .command('preview')
    .description('print the requests an event would produce (secrets and tokens redacted); nothing is sent')
    .requiredOption('--integration <file>', "integration record (JSON; '-': standard input)")
    .requiredOption('--event <file>', "Signal event (JSON; '-': standard input)")
    .option('--json', 'print a JSON array of {stage, method, url, headers, body}')
    .option('--endpoint <url>', 'show the requests as sent to this base URL (e.g. a local emulator)')
    .action(async (opts: PreviewOptions, cmd: Command) => {
      ctx.exitCode = await preview(ctx, cmd, opts);
    });
}

async function preview(ctx: Context, cmd: Command, opts: PreviewOptions): Promise<number> {
  const { io } = ctx;
  if (opts.integration === '-' && opts.event === '-') throw new CliError("only one of --integration and --event can be '-' (standard input)");
  let record: unknown;
  if (opts.integration === '-') {
    const r = parseJsonSafely((await readStdin(io, 'the integration record')).toString('utf8'));
    if (!r.ok) throw new CliError(`the integration record on standard input is not usable: ${r.message}`);
    record = r.value;
  } else record = await readJsonFile(io, opts.integration, 'integration record');
  const eventBytes = opts.event === '-' ? await readStdin(io, 'the event') : await readSmallFile(io, opts.event, 'event file');
  const parsed = parseEventLine(eventBytes, { maxBytes: Number.MAX_SAFE_INTEGER });
  if (!parsed.ok) {
    const where = opts.event === '-' ? 'the event on standard input' : `event file '${displayPath(io, resolvePath(io, opts.event))}'`;
    throw new CliError(`${where} is not a usable Signal event: ${parsed.message}`);
  }
  const engine = await loadEngine(ctx, cmd);
  try {
    const integration = engine.createIntegration(record as IntegrationRecord, opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {});
    let preview;
    try {
      preview = await integration.previewEvent(parsed.event);
    } catch (e) {
      if (!(e instanceof DeliveryError)) throw e;
      // A request deliver would refuse to send anywhere (host, scheme, credentials in the URL): a configuration error.
      if (e.code === REASONS.hostNotAllowed) throw new CliError(`the request would not be sent: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}`);
      // The event would fail before anything is sent (e.g. a check on the built body): say why, exit 1.
      io.stderr.write(safe(`error: the event would not be sent: ${e.code}: ${e.message}`) + '\n');
      if (e.hint) io.stderr.write(safe(`hint: ${e.hint.replace(/\s+/g, ' ').trim()}`) + '\n');
      return EXIT.failed;
    }
    if (preview.status === 'skipped') {
      // deliver's own gate: nothing would be sent. Say why, and exit 3 so scripts can tell.
      if (opts.json) io.stdout.write('[]\n');
      io.stderr.write(safe(`skipped: ${preview.reason}: ${preview.message} (deliver would send nothing)`) + '\n');
      return EXIT.skipped;
    }
    const requests = preview.requests;
    if (opts.json) {
      io.stdout.write(JSON.stringify(requests, null, 2) + '\n');
    } else {
      io.stdout.write(requests.map(requestBlock).join('\n'));
      if (opts.endpoint) io.stderr.write(safe(`note: --endpoint ${opts.endpoint}: requests shown as routed there (original host in X-Forwarded-Host)`) + '\n');
    }
    return EXIT.ok;
  } finally {
    engine.close();
  }
}
