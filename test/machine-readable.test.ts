/**
 * Machine-readable output and small tools: `deliver --json` ends with a JSON summary line (and
 * `--summary-json FILE`), progress only on a terminal, `test --reporter junit`, and `eval`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run, type CliIO } from '../cli/run.js';
import { progress } from '../cli/summary.js';
import { startMarketingCloudEmulator, type Emulator } from '../emulator/marketing-cloud.js';

const ROOT = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'si-machine-'));
let emu: Emulator;
beforeAll(async () => {
  emu = await startMarketingCloudEmulator();
});
afterAll(async () => {
  await emu.close();
  rmSync(dir, { recursive: true, force: true });
});

async function cli(args: string[], stdin?: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIO = {
    stdout: { write: (s: string) => ((out += s), true) },
    stderr: { write: (s: string) => ((err += s), true) },
    cwd: ROOT,
    ...(stdin !== undefined ? { stdin: Readable.from([Buffer.from(stdin)]) } : {}),
  };
  return { code: await run(args, io), out, err };
}

describe('deliver summary as JSON', () => {
  it('--json ends stderr with one JSON summary line whose counts add up; --summary-json writes it to a file', async () => {
    const file = join(dir, 'summary.json');
    const r = await cli(['deliver', '--integration', 'examples/integration.json', '--events', 'examples/events.ndjson', '--endpoint', emu.url, '--json', '--summary-json', file]);
    expect(r.code).toBe(1); // the example events include one that fails on purpose
    const last = r.err.trimEnd().split('\n').at(-1)!;
    const { summary } = JSON.parse(last) as { summary: Record<string, number | string> };
    expect(summary).toMatchObject({ lines_read: 6, delivered: 3, skipped: 2, failed: 1, dead_lettered: 0, exit_code: 1, endpoint: emu.url });
    expect(Number(summary.delivered) + Number(summary.skipped) + Number(summary.failed)).toBe(summary.lines_read);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(JSON.parse(last));
    // Not a terminal: no progress line (no carriage returns) anywhere.
    expect(r.err).not.toContain('\r');
  });

  it('without --json, --summary-json still writes the file and stderr keeps the text summary only', async () => {
    const file = join(dir, 'summary2.json');
    const r = await cli(['deliver', '--integration', 'examples/integration.json', '--events', '-', '--endpoint', emu.url, '--summary-json', file], readFileSync(join(ROOT, 'examples', 'lead-submitted.json'), 'utf8').replace(/\n/g, '') + '\n');
    expect(r.code).toBe(0);
    expect(r.err).not.toContain('{"summary"');
    expect((JSON.parse(readFileSync(file, 'utf8')) as { summary: object }).summary).toMatchObject({ lines_read: 1, delivered: 1, exit_code: 0 });
  });
});

describe('progress', () => {
  it('draws counts and rate once a second on a terminal, wipes itself before outcomes on the same terminal, and never off one', () => {
    vi.useFakeTimers();
    try {
      let tty = '';
      const p = progress({ write: (s: string) => ((tty += s), true), isTTY: true } as never, { write: () => true, isTTY: true } as never);
      p.count('delivered');
      p.count('failed');
      vi.advanceTimersByTime(1000);
      expect(tty).toMatch(/^\r\x1b\[2K2 events: 1 delivered, 0 skipped, 1 failed — \d+ events\/s$/);
      p.count('skipped'); // an outcome is about to be printed on the same terminal
      expect(tty.endsWith('\r\x1b[2K')).toBe(true);
      p.stop();
      let piped = '';
      const q = progress({ write: (s: string) => ((piped += s), true) });
      q.count('delivered');
      vi.advanceTimersByTime(5000);
      q.stop();
      expect(piped).toBe('');
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('test --reporter junit', () => {
  it('writes JUnit XML with one testcase per pin and the problems of a failing one', async () => {
    const ok = await cli(['test', '--reporter', 'junit']);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="signal-integrations pins" tests="9" failures="0"/);
    expect(ok.out.match(/<testcase /g)).toHaveLength(9);
    const pin = join(dir, 'pin.yaml');
    writeFileSync(pin, readFileSync(join(ROOT, 'specs', 'tests', 'salesforce_marketing_cloud', 'identified.yaml'), 'utf8').replace('first_name: Sam\n', 'first_name: "<Sam & co>"\n'));
    const bad = await cli(['test', '--reporter', 'junit', pin]);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('failures="1"');
    expect(bad.out).toContain('<failure message="request 2 (send) body.Data.first_name: expected &quot;&lt;Sam &amp; co&gt;&quot;, got &quot;Sam&quot;">');
  });
});

describe('eval', () => {
  it('evaluates an expression against an event file, as the engine does', async () => {
    const r = await cli(['eval', 'properties.email', '--event', 'examples/lead-submitted.json']);
    expect(r).toEqual({ code: 0, out: '"jane.doe@example.com"\n', err: '' });
  });

  it('binds $event and, with a record, $config; reads the event from stdin', async () => {
    const r = await cli(['eval', '$uppercase(properties.first_name) & "@" & $config.tenant_subdomain & "/" & $event.type', '--event', '-', '--integration', 'examples/integration.json'], readFileSync(join(ROOT, 'examples', 'lead-submitted.json'), 'utf8'));
    expect(r.out).toBe('"JANE@mc-abc123xyz/track"\n');
  });

  it('says when nothing matched (the key would be left out), and points at a syntax error', async () => {
    const none = await cli(['eval', 'properties.nope', '--event', 'examples/lead-submitted.json']);
    expect(none).toMatchObject({ code: 0, out: '' });
    expect(none.err).toMatch(/no value/);
    const bad = await cli(['eval', 'properties.(', '--event', 'examples/lead-submitted.json']);
    expect(bad.code).toBe(2);
    expect(bad.err).toBe('error: JSONata syntax error S0203: Expected ")" before end of expression\n  properties.(\n              ^\n');
  });
});
