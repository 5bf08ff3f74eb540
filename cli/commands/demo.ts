/**
 * `demo` (npm start): start the emulator on a free loopback port, deliver examples/events.ndjson through
 * examples/integration.json (the product reference's record) with the endpoint pointed at it, print the
 * outcomes and what the emulator received, close everything. Exit 0 when nothing unexpected failed.
 */
import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { formatReceived, startMarketingCloudEmulator } from '../../emulator/marketing-cloud.js';
import { packagePath } from '../../engine/paths.js';
import { loadEngine, type Context } from '../context.js';
import { displayPath, EXIT, readJsonFile } from '../io.js';
import { deliverStream } from './deliver.js';
import { DEFAULT_MAX_LINE_BYTES, type IntegrationRecord } from '../../engine/index.js';

/** Failures the example events are there to show; any other failure makes the demo exit 1. */
const EXPECTED_FAILURES: Record<string, string> = {
  evt_01J9Z6T5H9Y3: 'check_failed', // a lead without an email: no ContactKey, nothing is sent
};

export function registerDemo(program: Command, ctx: Context): void {
  program
    .command('demo')
    .description('deliver the example events through the example record against a local emulator, and show what it received')
    .action(async (_opts: unknown, cmd: Command) => {
      ctx.exitCode = await demo(ctx, cmd);
    });
}

async function demo(ctx: Context, cmd: Command): Promise<number> {
  const { io } = ctx;
  const recordFile = packagePath('examples', 'integration.json');
  const eventsFile = packagePath('examples', 'events.ndjson');
  const record = await readJsonFile(io, recordFile, 'integration record');
  const engine = await loadEngine(ctx, cmd);
  const emu = await startMarketingCloudEmulator({ host: '127.0.0.1', port: 0 });
  io.hooks?.emulatorStarted?.(emu);
  const source = createReadStream(eventsFile);
  try {
    const integration = engine.createIntegration(record as IntegrationRecord, { endpoint: emu.url });
    io.stdout.write(
      `demo: delivering ${displayPath(io, eventsFile)} through '${integration.name}' (${displayPath(io, recordFile)})\n` +
        `      every request goes to a local Marketing Cloud emulator at ${emu.url} (endpoint override)\n\n`,
    );
    const unexpected: string[] = [];
    const run = await deliverStream(io, {
      engine,
      integration,
      source,
      concurrency: 1, // one at a time: the outcomes print in input order
      maxLineBytes: DEFAULT_MAX_LINE_BYTES,
      endpoint: emu.url,
      endpointIsOverride: false,
      graceMs: 0,
      observe: ({ outcome: o }) => {
        if (o.status === 'failed' && EXPECTED_FAILURES[o.event_id ?? ''] !== o.reason) unexpected.push(`line ${o.line} (${o.event_id ?? '-'}): ${o.reason}`);
      },
    });
    io.stdout.write(`\nwhat the emulator received (secrets and tokens redacted):\n${formatReceived(emu)}\n`);
    const expected = run.result.failed - unexpected.length;
    if (unexpected.length) {
      io.stderr.write(`error: unexpected failures: ${unexpected.join('; ')}\n`);
      return EXIT.failed;
    }
    io.stdout.write(`\ndemo ok: ${run.result.delivered} delivered, ${run.result.skipped} skipped, ${expected} failed as expected (see its hint)\n`);
    return EXIT.ok;
  } finally {
    source.destroy();
    engine.close();
    await emu.close();
  }
}
