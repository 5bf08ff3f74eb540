/**
 * Issue 8.8, 8.9, 8.10: what a request and its failure may carry. A placeholder value cannot make a
 * path segment `.` or `..`; a secret cannot leak through a cut error body, a base64 or URL-encoded echo,
 * or console.log of an integration or the engine; preview refuses exactly the hosts deliver refuses.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { run, type CliIO } from '../cli/run.js';
import { DeliveryError, Engine } from '../engine/index.js';
import { parseTemplate, renderTemplate, TemplateValueError } from '../engine/compile/template.js';
import { event, referenceRecord, withSetup, within, type Json } from './helpers/fixtures.js';

const FIXTURE = readFileSync(new URL('./fixtures/self-contained-spec.yaml', import.meta.url), 'utf8');
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** A spec folder holding the fixture spec, changed by `edit`. */
function specDir(edit: (text: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), 'request-safety-'));
  dirs.push(dir);
  const text = edit(FIXTURE);
  if (text === FIXTURE) throw new Error('the edit changed nothing');
  writeFileSync(join(dir, 'spec.yaml'), text);
  return dir;
}

describe('dot-segments from placeholder values', () => {
  const render = (template: string, ...values: unknown[]) => renderTemplate(parseTemplate(template), values, 'url');

  for (const v of ['..', '.', '%2e%2e', '%2E.', '.%2e', '%2e']) {
    it(`refuses a value ${JSON.stringify(v)} that fills a whole path segment`, () => {
      // A literal `%` in a value is encoded (%25), so only `.`/`..` themselves get through: both are refused.
      if (v.includes('%')) expect(render('https://h.example/interaction/v1/{x}/events', v)).toBe(`https://h.example/interaction/v1/${encodeURIComponent(v)}/events`);
      else expect(() => render('https://h.example/interaction/v1/{x}/events', v)).toThrow(TemplateValueError);
    });
  }

  it('refuses a segment that a value completes into a dot-segment, and at the end of the path', () => {
    expect(() => render('https://h.example/v1/.{x}/events', '.')).toThrow(/makes the path segment '\.\.'/);
    expect(() => render('https://h.example/v1/%2e{x}', '.')).toThrow(/makes the path segment '%2e\.'/);
    expect(() => render('https://h.example/v1/{x}?q=1', '..')).toThrow(TemplateValueError);
    expect(() => render('https://h.example/v1/{x}#f', '.')).toThrow(TemplateValueError);
  });

  it('lets dots through where they change nothing: inside a segment, in the query, in a host label', () => {
    expect(render('https://h.example/v1/{x}/events', '...')).toBe('https://h.example/v1/.../events');
    expect(render('https://h.example/v1/{x}/events', 'a..b')).toBe('https://h.example/v1/a..b/events');
    expect(render('https://h.example/v1/key:{x}/rows', '..')).toBe('https://h.example/v1/key:../rows');
    expect(render('https://h.example/v1/events?q={x}', '..')).toBe('https://h.example/v1/events?q=..');
    expect(render('https://{x}.h.example/v1/events', 'tenant')).toBe('https://tenant.h.example/v1/events');
  });

  it('deliver fails the event with mapping_error and sends nothing; preview refuses it too', async () => {
    const specs = specDir((t) => t.replace('/interaction/v1/events', '/interaction/v1/{properties.lead_type}'));
    await withSetup({}, { specs }, async ({ engine, emu }) => {
      const integration = engine.createIntegration(referenceRecord());
      const e = event({ properties: { ...event().properties, lead_type: '..' } });
      const outcome = await within(10_000, integration.deliver(e));
      expect(outcome).toMatchObject({ status: 'failed', reason: 'mapping_error', retryable: false });
      expect(outcome.message).toMatch(/path segment '\.\.'/);
      expect(emu.requests.filter((r) => r.path.startsWith('/interaction'))).toEqual([]);
      await expect(integration.preview(e)).rejects.toThrow(/path segment '\.\.'/);
      // An ordinary value still goes where it should.
      const ok = await integration.preview(event({ properties: { ...event().properties, lead_type: 'events' } }));
      expect(new URL(ok.at(-1)!.url).pathname).toBe('/interaction/v1/events');
    });
  });
});

/** A vendor stub on loopback: a token for any auth request, `sendAnswer` for anything else. */
async function stubVendor(sendAnswer: { status: number; type: string; body: string }): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.url?.includes('/v2/token')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: 'tok-abcdefghijklmnop', token_type: 'Bearer', expires_in: 1080 }));
      } else {
        res.writeHead(sendAnswer.status, { 'content-type': sendAnswer.type });
        res.end(sendAnswer.body);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('secret fragments', () => {
  const SECRET = 'p@ss w/rd+shh-secret-value';
  const record = (): Json => {
    const r = referenceRecord();
    return { ...r, config: { ...r.config, client_secret: SECRET } };
  };
  /** No run of 6 or more characters of the secret, in any of its forms, survives. */
  const leaks = (text: string): string[] => {
    const forms = [SECRET, encodeURIComponent(SECRET), new URLSearchParams({ s: SECRET }).toString().slice(2)];
    const found: string[] = [];
    for (const f of forms) for (let i = 0; i + 6 <= f.length; i++) if (text.includes(f.slice(i, i + 6))) found.push(f.slice(i, i + 6));
    return found;
  };

  async function failWith(body: string, type = 'text/html'): Promise<Json> {
    const vendor = await stubVendor({ status: 400, type, body });
    const engine = await Engine.load({ endpoint: vendor.url });
    try {
      return (await within(10_000, engine.createIntegration(record()).deliver(event()))) as unknown as Json;
    } finally {
      engine.close();
      await vendor.close();
    }
  }

  it('a non-JSON error body is redacted before it is cut: a secret across the cut leaves no prefix', async () => {
    // The secret starts at character 486 and ends past 500, where the body used to be cut.
    const outcome = await failWith(`<html>${'x'.repeat(480)}${SECRET}</html>`);
    expect(outcome).toMatchObject({ status: 'failed', http_status: 400 });
    expect(outcome.vendor_message).toMatch(/^<html>x+\[redacted\]/);
    expect(outcome.vendor_message.length).toBeLessThanOrEqual(501);
    expect(leaks(JSON.stringify(outcome))).toEqual([]);
  });

  it('the base64 client_id:client_secret a vendor echoes is redacted, whatever its alignment', async () => {
    for (const id of ['abc123clientid', 'abc123clientidX', 'abc123clientidXY']) {
      const basic = Buffer.from(`${id}:${SECRET}`).toString('base64');
      const outcome = await failWith(`Authorization failed for Basic ${basic} (url-encoded: ${encodeURIComponent(SECRET)}, form: ${new URLSearchParams({ s: SECRET }).toString()})`, 'text/plain');
      const message = String(outcome.vendor_message);
      expect(message).toContain('[redacted]');
      const echoed = /Basic (\S+)/.exec(message)![1]!;
      // What is left of the base64 run decodes to nothing of the secret.
      const decoded = echoed.split('[redacted]').map((part) => Buffer.from(part, 'base64').toString('latin1')).join(' ');
      expect(leaks(decoded), id).toEqual([]);
      expect(leaks(message), id).toEqual([]);
    }
  });

  it('console.log / util.inspect / JSON.stringify of an integration or the engine print no secret and no token', async () => {
    await withSetup({}, {}, async ({ engine }) => {
      const integration = engine.createIntegration(referenceRecord());
      expect((await integration.deliver(event())).status).toBe('delivered'); // a token is now cached
      const printed = [inspect(integration, { depth: 20 }), inspect(engine, { depth: 20 }), inspect(engine.tokens, { depth: 20 }), JSON.stringify({ integration, engine }), `${inspect({ list: [integration] }, { depth: 20 })}`].join('\n');
      expect(printed).not.toContain('shh-secret-value');
      expect(printed).not.toMatch(/access_token|Bearer|tok-/);
      expect(inspect(integration)).toContain('salesforce_marketing_cloud');
    });
  });
});

describe('preview refuses exactly what deliver refuses', () => {
  const specs = () => specDir((t) => t.replace('      pattern: "^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"\n', ''));
  const hostile = ['evil.com?', 'evil.com/x#', 'user@evil.com', 'evil.com:1/'];

  it('same check, same error, for every request an event causes', async () => {
    const engine = await Engine.load({ specs: specs() });
    try {
      for (const tenant of hostile) {
        const r = referenceRecord();
        const integration = engine.createIntegration({ ...r, config: { ...r.config, tenant_subdomain: tenant } });
        const outcome = await within(10_000, integration.deliver(event()));
        expect(outcome, tenant).toMatchObject({ status: 'failed', reason: 'host_not_allowed', attempts: 0 });
        const refused = await integration.preview(event()).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(refused, tenant).toBeInstanceOf(DeliveryError);
        expect((refused as DeliveryError).code).toBe('host_not_allowed');
        expect((refused as DeliveryError).message).toBe(outcome.message);
      }
    } finally {
      engine.close();
    }
  });

  it('the CLI prints no URL, says why, and exits 2', async () => {
    const dir = specs();
    const r = referenceRecord();
    const rec = join(dir, 'record.json');
    writeFileSync(rec, JSON.stringify({ ...r, config: { ...r.config, tenant_subdomain: 'evil.com?' } }));
    const ev = join(dir, 'event.json');
    writeFileSync(ev, JSON.stringify(event()));
    let out = '';
    let err = '';
    const io: CliIO = { stdout: { write: (s: string) => ((out += s), true) }, stderr: { write: (s: string) => ((err += s), true) } };
    const code = await run(['--specs', dir, 'preview', '--integration', rec, '--event', ev], io);
    expect(code).toBe(2);
    expect(out).toBe('');
    expect(err).toMatch(/^error: the request would not be sent: auth\.token: the request URL is not a valid URL/);
    expect(err).not.toContain('evil.com');
  });
});
