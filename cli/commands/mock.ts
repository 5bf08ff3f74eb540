/**
 * `mock`: run the local Marketing Cloud emulator until SIGINT/SIGTERM, for `deliver --endpoint`;
 * `mock --capture VENDOR`: the capture vendor (emulator/capture.ts) for that spec instead.
 */
import type { Command } from 'commander';
import { safe } from '../text.js';
import { formatReceived, startMarketingCloudEmulator, type Emulator } from '../../emulator/marketing-cloud.js';
import { loadEngine, type Context } from '../context.js';
import { formatCaptured, startCapture, type CaptureFault } from '../../emulator/capture.js';
import { CliError, EXIT } from '../io.js';
import { integerOption } from '../options.js';

interface MockOptions {
  port: number;
  host: string;
  expiresIn?: number;
  capture?: string;
  fail: CaptureFault[];
}

/** `--fail STATUS[:STAGE][@N,M|@FRACTION][=CODE]`, e.g. 503:send@1, 429:send@0.5, 401:auth=invalid_client. */
function failOption(value: string, previous: CaptureFault[]): CaptureFault[] {
  const m = /^([1-5]\d\d)(?::([a-z][\w.]*))?(?:@(0?\.\d+|1(?:\.0+)?|\d+(?:,\d+)*))?(?:=(.+))?$/.exec(value);
  if (!m) throw new CliError(`--fail '${value}': expected STATUS[:STAGE][@N,M|@FRACTION][=CODE], e.g. 503:send@1 or 429:send@0.5`);
  const f: CaptureFault = { status: Number(m[1]) };
  if (m[2]) f.stage = m[2];
  if (m[3]) {
    if (m[3].includes('.')) f.rate = Number(m[3]);
    else f.nth = m[3].split(',').map(Number);
  }
  if (m[4]) f.code = m[4];
  return [...previous, f];
}

export function registerMock(program: Command, ctx: Context): void {
  program
    .command('mock')
    .description('run a local Marketing Cloud emulator (loopback only) until Ctrl-C; use its URL with --endpoint')
    .option('--port <n>', 'port to listen on (0: any free port)', integerOption(0, 65535), 9090)
    .option('--host <address>', 'loopback address to bind', '127.0.0.1')
    .option('--expires-in <seconds>', 'lifetime of issued access tokens', integerOption(1, 86_400))
    .option('--capture <vendor>', 'instead: a capture vendor for this spec (any vendor): answers as the spec declares success, records every request (GET /_capture/requests)')
    .option('--fail <rule>', 'with --capture: inject a failure, STATUS[:STAGE][@N,M|@FRACTION][=CODE] (repeatable), e.g. 503:send@1', failOption, [])
    .action(async (opts: MockOptions, cmd: Command) => {
      ctx.exitCode = opts.capture !== undefined ? await capture(ctx, cmd, opts) : await mock(ctx, opts);
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
  const sig = await untilSignal();
  clearInterval(tick);
  await emu.close();
  io.stderr.write(`${sig}: emulator stopped after ${emu.stats.requests} requests\n`);
  return EXIT.ok;
}

async function capture(ctx: Context, cmd: Command, opts: MockOptions): Promise<number> {
  const { io } = ctx;
  const engine = await loadEngine(ctx, cmd);
  const spec = engine.specs.get(opts.capture!);
  if (!spec) {
    engine.close();
    throw new CliError(`no spec for vendor '${opts.capture}' (known: ${[...engine.specs.keys()].join(', ')}); --specs DIR names where specs are`);
  }
  let cap;
  try {
    cap = await startCapture({ spec, port: opts.port, host: opts.host, faults: opts.fail, ...(opts.expiresIn !== undefined ? { expiresIn: opts.expiresIn } : {}) });
  } catch (e) {
    engine.close();
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`cannot start the capture vendor on ${opts.host}:${opts.port}: ${code === 'EADDRINUSE' ? 'the port is in use (try --port 0)' : (code ?? (e as Error).message)}`);
  }
  io.stdout.write(
    `capture vendor for ${safe(spec.vendor)} listening on ${cap.url}\n` +
      `Deliver through it with --endpoint ${cap.url}; requests are listed at ${cap.url}/_capture/requests (secrets redacted). Ctrl-C to stop.\n`,
  );
  let shown = 0;
  const tick = setInterval(() => {
    for (; shown < cap.requests.length; shown++) io.stdout.write(safe(formatCaptured({ requests: cap.requests.slice(shown, shown + 1), tokens: cap.tokens })) + '\n');
  }, 200);
  const sig = await untilSignal();
  clearInterval(tick);
  await cap.close();
  engine.close();
  io.stderr.write(`${sig}: capture vendor stopped after ${cap.requests.length} requests\n`);
  return EXIT.ok;
}

/** Resolves with the first SIGINT or SIGTERM (Ctrl-C ends the mock cleanly). */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals): void => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
