/**
 * The capture vendor (emulator/capture.ts) over real HTTP, with the example specs: each answered with its
 * success status and a body holding what the spec reads (token, expires_in, token_type, success.id), every
 * request recorded by stage, failures injected per stage and classified by the spec's own rules.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Engine } from '../engine/index.js';
import { formatCaptured, startCapture, type Capture } from '../emulator/capture.js';

const ROOT = new URL('../examples/', import.meta.url).pathname;
const event = JSON.parse(readFileSync(`${ROOT}lead-submitted.json`, 'utf8')) as any;
const record = (vendor: string) => (parse(readFileSync(`${ROOT}specs/tests/${vendor}/lead_submitted.yaml`, 'utf8')) as { record: any }).record;

let open: { cap: Capture; engine: Engine }[] = [];
afterEach(async () => {
  for (const o of open) {
    o.engine.close();
    await o.cap.close();
  }
  open = [];
});

async function setUp(vendor: string) {
  const engine = await Engine.load({ specs: [`${ROOT}specs/${vendor}.yaml`] });
  const cap = await startCapture({ spec: engine.specs.get(vendor)! });
  open.push({ cap, engine });
  return { cap, integration: engine.createIntegration(record(vendor), { endpoint: cap.url }) };
}

describe('capture vendor', () => {
  it('acme_oauth: answers the token stage with what it reads (access_token, expires_in, token_type Bearer), then the send with 202 and its id', async () => {
    const { cap, integration } = await setUp('acme_oauth_events');
    const o = await integration.deliver(event);
    await integration.flush();
    expect(o).toMatchObject({ status: 'delivered', response_id: 'cap_1' });
    expect(cap.requests.map((r) => [r.stage, r.method, r.host + r.path, r.status])).toEqual([
      ['auth.token', 'POST', 'mytenant.login.acme.example/oauth2/v1/token', 200],
      ['send', 'POST', 'api.acme.example/v1/events', 202],
    ]);
    const token = cap.tokens[0]!;
    expect(cap.requests[1]!.headers.authorization).toBe(`Bearer ${token}`);
    const listing = await (await fetch(`${cap.url}/_capture/requests`)).text();
    expect(listing).toContain('"stage":"auth.token"');
    expect(listing).not.toContain(token);
    expect(listing).not.toContain('s3cret');
    expect(formatCaptured(cap)).not.toContain(token);
  });

  it('klaviyo and mixpanel (batching): each answered with its success status', async () => {
    for (const [vendor, status] of [['klaviyo_events', 202], ['mixpanel_import', 200]] as const) {
      const { cap, integration } = await setUp(vendor);
      const p = integration.deliver(event);
      await integration.flush();
      expect((await p).status).toBe('delivered');
      expect(cap.requests.map((r) => [r.stage, r.status])).toEqual([['send', status]]);
    }
  });

  it('injects failures per stage: the spec rules classify them (code where vendor_error reads it), the Nth request only', async () => {
    const { cap, integration } = await setUp('acme_oauth_events');
    cap.setFaults([{ stage: 'send', status: 403, code: 'insufficient_scope', nth: [1] }]);
    const failed = await integration.deliver(event);
    expect(failed).toMatchObject({ status: 'failed', http_status: 403, vendor_code: 'insufficient_scope' });
    expect(failed.hint).toMatch(/lacks the scope/);
    expect((await integration.deliver({ ...event, event_id: 'evt_2' })).status).toBe('delivered');
    expect(cap.requests.map((r) => [r.stage, r.status, r.fault ?? ''])).toEqual([
      ['auth.token', 200, ''],
      ['send', 403, 'injected 403'],
      ['send', 202, ''],
    ]);
    // An auth stage refused: the auth rule's hint.
    const fresh = await setUp('acme_oauth_events');
    fresh.cap.setFaults([{ stage: 'auth', status: 401, code: 'invalid_client' }]);
    const refused = await fresh.integration.deliver(event);
    expect(refused).toMatchObject({ status: 'failed', reason: 'auth_failed' });
    expect(refused.hint).toMatch(/does not know this client_id/);
  });
});

describe('mock --capture', () => {
  it('prints its URL, answers deliver as the spec declares, injects --fail, lists requests on GET, stops on Ctrl-C with exit 0', async () => {
    const { startCli } = await import('./helpers/cli-process.js');
    const { run } = await import('../cli/run.js');
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const dir = mkdtempSync(`${(await import('node:os')).tmpdir()}/si-capture-`);
    const child = startCli(['--specs', `${ROOT}specs`, 'mock', '--capture', 'acme_oauth_events', '--port', '0', '--fail', '403:send@2=insufficient_scope']);
    try {
      await child.waitFor((o) => /listening on http:\/\/127\.0\.0\.1:\d+/.test(o));
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(child.out())![1]!;
      writeFileSync(`${dir}/record.json`, JSON.stringify({ ...record('acme_oauth_events'), id: 'int_cap' }));
      writeFileSync(`${dir}/events.ndjson`, [1, 2].map((i) => JSON.stringify({ ...event, event_id: `evt_c${i}` })).join('\n') + '\n');
      let out = '';
      const code = await run(['--specs', `${ROOT}specs`, 'deliver', '--integration', `${dir}/record.json`, '--events', `${dir}/events.ndjson`, '--endpoint', url, '--concurrency', '1', '--json'], {
        stdout: { write: (t: string) => ((out += t), true) },
        stderr: { write: () => true },
      });
      expect(code).toBe(1);
      const outcomes = out.trim().split('\n').map((l) => JSON.parse(l) as { event_id: string; status: string; vendor_code?: string });
      expect(outcomes.map((o) => [o.event_id, o.status, o.vendor_code ?? ''])).toEqual([
        ['evt_c1', 'delivered', ''],
        ['evt_c2', 'failed', 'insufficient_scope'],
      ]);
      const listed = (await (await fetch(`${url}/_capture/requests`)).json()) as { stage: string; status: number }[];
      expect(listed.map((r) => [r.stage, r.status])).toEqual([
        ['auth.token', 200],
        ['send', 202],
        ['send', 403],
      ]);
      await child.waitFor((o) => o.includes('#3 send POST api.acme.example/v1/events → 403 [injected 403]'));
      child.proc.kill('SIGINT');
      expect(await child.exit).toBe(0);
      expect(child.err()).toMatch(/SIGINT: capture vendor stopped after 3 requests/);
      expect(child.out()).not.toMatch(/cap_access_token_|s3cret/);
    } finally {
      child.proc.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
