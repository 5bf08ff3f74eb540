/** `preview`: the exact requests an event would produce for an integration record, secrets redacted; sends nothing. */
import type { Command } from 'commander';
import { DeliveryError, parseEventLine, REASONS } from '../../engine/index.js';
import { loadEngine, type Context } from '../context.js';
import { requestBlock } from '../format.js';
import { CliError, displayPath, EXIT, readJsonFile, readSmallFile, resolvePath } from '../io.js';
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
    .requiredOption('--integration <file>', 'integration record (JSON)')
    .requiredOption('--event <file>', 'Signal event (JSON)')
    .option('--json', 'print a JSON array of {stage, method, url, headers, body}')
    .option('--endpoint <url>', 'show the requests as sent to this base URL (e.g. a local emulator)')
    .action(async (opts: PreviewOptions, cmd: Command) => {
      ctx.exitCode = await preview(ctx, cmd, opts);
    });
}

async function preview(ctx: Context, cmd: Command, opts: PreviewOptions): Promise<number> {
  const { io } = ctx;
  const record = await readJsonFile(io, opts.integration, 'integration record');
  const eventPath = resolvePath(io, opts.event);
  const parsed = parseEventLine(await readSmallFile(io, opts.event, 'event file'), { maxBytes: Number.MAX_SAFE_INTEGER });
  if (!parsed.ok) throw new CliError(`event file '${displayPath(io, eventPath)}' is not a usable Signal event: ${parsed.message}`);
  const engine = await loadEngine(ctx, cmd);
  try {
    const integration = engine.createIntegration(record, opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {});
    let requests;
    try {
      requests = await integration.preview(parsed.event);
    } catch (e) {
      if (!(e instanceof DeliveryError)) throw e;
      // A request deliver would refuse to send anywhere (host, scheme, credentials in the URL): a configuration error.
      if (e.code === REASONS.hostNotAllowed) throw new CliError(`the request would not be sent: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}`);
      // The event would fail before anything is sent (e.g. a check on the built body): say why, exit 1.
      io.stderr.write(safe(`error: the event would not be sent: ${e.code}: ${e.message}`) + '\n');
      if (e.hint) io.stderr.write(safe(`hint: ${e.hint.replace(/\s+/g, ' ').trim()}`) + '\n');
      return EXIT.failed;
    }
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
