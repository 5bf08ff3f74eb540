/** `mock`: run the local Marketing Cloud emulator until SIGINT/SIGTERM, for `deliver --endpoint`. */
import type { Command } from 'commander';
import { safe } from '../text.js';
import { formatReceived, startMarketingCloudEmulator, type Emulator } from '../../emulator/marketing-cloud.js';
import type { Context } from '../context.js';
import { CliError, EXIT } from '../io.js';
import { integerOption } from '../options.js';

interface MockOptions {
  port: number;
  host: string;
  expiresIn?: number;
}

export function registerMock(program: Command, ctx: Context): void {
  program
    .command('mock')
    .description('run a local Marketing Cloud emulator (loopback only) until Ctrl-C; use its URL with --endpoint')
    .option('--port <n>', 'port to listen on (0: any free port)', integerOption(0, 65535), 9090)
    .option('--host <address>', 'loopback address to bind', '127.0.0.1')
    .option('--expires-in <seconds>', 'lifetime of issued access tokens', integerOption(1, 86_400))
    .action(async (opts: MockOptions) => {
      ctx.exitCode = await mock(ctx, opts);
    });
}

async function mock(ctx: Context, opts: MockOptions): Promise<number> {
  const { io } = ctx;
  let emu: Emulator;
  try {
    emu = await startMarketingCloudEmulator({ port: opts.port, host: opts.host, ...(opts.expiresIn !== undefined ? { expires_in: opts.expiresIn } : {}) });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the port is in use (try --port 0)' : code ?? (e as Error).message;
    throw new CliError(`cannot start the emulator on ${opts.host}:${opts.port}: ${why}`);
  }
  io.hooks?.emulatorStarted?.(emu);
  const client = emu.clients[0];
  io.stdout.write(
    [
      `Marketing Cloud emulator listening on ${emu.url}`,
      client ? `tenant ${client.tenant}, client_id ${client.client_id} (the credentials of examples/integration.json)` : '',
      'Deliver through it with:',
      `  signal-integrations deliver --integration examples/integration.json --events examples/events.ndjson --endpoint ${emu.url}`,
      'Requests keep their path; the host they were meant for goes in X-Forwarded-Host. Ctrl-C to stop.',
      '',
    ]
      .filter((l, i) => l !== '' || i > 0)
      .join('\n'),
  );
  // Echo what arrives, one line per request (secrets and tokens redacted by formatReceived).
  let shown = 0;
  const tick = setInterval(() => {
    // One request at a time, each made one safe line: a client's body cannot print a fake request line.
    const upTo = emu.requests.length;
    for (; shown < upTo; shown++) {
      io.stdout.write(safe(formatReceived({ requests: emu.requests.slice(shown, shown + 1), clients: emu.clients })).replace(/^#1 /, `#${shown + 1} `) + '\n');
    }
  }, 200);
  const sig = await new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
  clearInterval(tick);
  await emu.close();
  io.stderr.write(`${sig}: emulator stopped after ${emu.stats.requests} requests\n`);
  return EXIT.ok;
}
