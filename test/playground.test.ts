/**
 * The playground in a real browser: headless Chromium (the system's /usr/bin/chromium, driven by
 * playwright-core; no browser download). The test fills the record form generated from the spec,
 * sees the preview update as it types, sends to the bundled emulator and reads the outcome; a broken
 * spec file shows up with file:line:col without a restart. A screenshot goes to test-results/.
 * A missing browser fails the test (.ci/run installs chromium).
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../cli/run.js';
import { startPlayground, type Playground } from '../cli/playground/server.js';
import { BUNDLED_SPECS_DIR } from '../engine/index.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const RESULTS = new URL('../test-results/', import.meta.url).pathname;
const specs = mkdtempSync(join(tmpdir(), 'si-playground-'));
let pg: Playground;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: install the Debian package chromium (.ci/run does)`);
  cpSync(BUNDLED_SPECS_DIR, specs, { recursive: true });
  pg = await startPlayground({ port: 0, specs: [specs] });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // playwright-core gives every launch a fresh temporary --user-data-dir.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await pg?.close();
  rmSync(specs, { recursive: true, force: true });
});

describe('playground', () => {
  it('serves on 127.0.0.1 only', () => {
    expect(new URL(pg.url).hostname).toBe('127.0.0.1');
  });

  it('builds the record form from the spec, previews as you type, sends to the emulator and shows the outcome', async () => {
    await page.goto(pg.url);
    await page.locator('#spec option', { hasText: 'salesforce_marketing_cloud' }).first().waitFor({ state: 'attached' });
    await page.selectOption('#spec', 'salesforce_marketing_cloud');
    // Secrets are password fields; descriptions are help text; presets and event toggles come from the spec.
    expect(await page.getAttribute('#cfg-client_secret', 'type')).toBe('password');
    expect(await page.textContent('#config')).toContain('Installed Package client secret.');
    expect(await page.locator('#events [data-event]').count()).toBe(3);

    await page.fill('#cfg-client_secret', 'shh-secret-value');
    await page.fill('#cfg-event_definition_key', 'lead_submitted');
    await page.selectOption('#example', { index: 0 });
    await expect.poll(() => page.locator('#preview pre.request').count(), { timeout: 15_000 }).toBe(2);
    await expect.poll(() => page.textContent('#preview'), { timeout: 15_000 }).toContain('"EventDefinitionKey": "lead_submitted"');
    const preview = (await page.textContent('#preview'))!;
    expect(preview).toContain('POST https://mc-abc123xyz.rest.marketingcloudapis.com/interaction/v1/events');
    expect(preview).toContain('Authorization: Bearer [redacted]');
    expect(preview).not.toContain('shh-secret-value');

    // A record the spec refuses says why, as you type.
    await page.fill('#cfg-tenant_subdomain', 'not a subdomain!');
    await expect.poll(() => page.textContent('#preview-msg'), { timeout: 15_000 }).toMatch(/integration record:[\s\S]*tenant_subdomain/);
    await page.fill('#cfg-tenant_subdomain', 'mc-abc123xyz');
    await expect.poll(() => page.locator('#preview pre.request').count(), { timeout: 15_000 }).toBe(2);

    await page.click('#send');
    await expect.poll(() => page.textContent('#outcome-status'), { timeout: 20_000 }).toBe('delivered');
    const received = (await page.textContent('#received'))!;
    expect(received).toContain('POST /interaction/v1/events');
    expect(received).toContain('"EventDefinitionKey":"lead_submitted"');
    expect(received).not.toContain('shh-secret-value');
    expect(pg.emulator.events().map((e) => e.EventDefinitionKey)).toEqual(['lead_submitted']);
    mkdirSync(RESULTS, { recursive: true });
    await page.screenshot({ path: join(RESULTS, 'playground.png'), fullPage: true });
  });

  it("unticking the event's toggle: the preview shows deliver's skip reason and no request, and Send answers skipped", async () => {
    // The page is where the previous case left it: the reference record filled, the Lead Submitted example event.
    await expect.poll(() => page.locator('#preview pre.request').count(), { timeout: 15_000 }).toBe(2);
    await page.locator('#events [data-event="Lead Submitted"]').uncheck();
    await expect.poll(() => page.textContent('#preview-msg'), { timeout: 15_000 }).toBe(
      "skipped: event_not_forwarded: 'Lead Submitted' is not an event this integration forwards (deliver sends nothing)",
    );
    expect(await page.locator('#preview pre.request').count()).toBe(0);
    pg.emulator.reset();
    await page.click('#send');
    await expect.poll(() => page.textContent('#outcome-status'), { timeout: 20_000 }).toBe('skipped');
    expect(await page.textContent('#outcome')).toContain('event_not_forwarded');
    expect(pg.emulator.requests).toHaveLength(0);
    await page.locator('#events [data-event="Lead Submitted"]').check();
    await expect.poll(() => page.locator('#preview pre.request').count(), { timeout: 15_000 }).toBe(2);
  });

  it('shows spec errors with file:line:col after a spec file changes, without a restart', async () => {
    writeFileSync(join(specs, 'broken.yaml'), 'spec_version: 1\nvendor: broken\ntitle: Broken\nversion: 1.0.0\nconfig: {type: object, properties: {}}\nallowed_hosts: [api.example.com]\nsend:\n  request: {method: POST, url: api.example.com/x}\n');
    await expect.poll(() => page.textContent('#spec-errors'), { timeout: 20_000 }).toMatch(/broken\.yaml:8:\d+: the URL has no scheme/);
    // The good specs stay usable.
    expect(await page.locator('#spec option').count()).toBe(3);
    await page.screenshot({ path: join(RESULTS, 'playground-spec-error.png'), fullPage: true });
  });
});

describe('playground reload', () => {
  it('keeps seeing a spec through atomic saves (temp file renamed over it): each save reloads it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'si-playground-atomic-'));
    cpSync(BUNDLED_SPECS_DIR, dir, { recursive: true });
    const file = join(dir, 'salesforce_marketing_cloud.yaml');
    const original = readFileSync(file, 'utf8');
    const title = /^title: (.*)$/m.exec(original)![1]!;
    const local = await startPlayground({ port: 0, specs: [dir] });
    const titleNow = async () => {
      const state = (await (await fetch(new URL('/api/state', local.url))).json()) as { specs: { vendor: string; title: string }[] };
      return state.specs.find((x) => x.vendor === 'salesforce_marketing_cloud')?.title;
    };
    try {
      expect(await titleNow()).toBe(title);
      for (const n of [1, 2, 3]) {
        const tmp = join(dir, `.salesforce_marketing_cloud.yaml.${n}.tmp`);
        writeFileSync(tmp, original.replace(/^title: .*$/m, `title: Version ${n}`));
        renameSync(tmp, file);
        await expect.poll(titleNow, { timeout: 15_000 }).toBe(`Version ${n}`);
      }
    } finally {
      await local.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('playground for a spec init wrote, in a 700 px window', () => {
  it("opens on the spec with init's example record, previews it; Send is disabled while the record is invalid; no word of the preview is broken", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'si-playground-init-'));
    const quiet = { write: () => true };
    expect(await run(['init', 'acme_crm', '--auth', 'api_key', '--dir', dir], { stdout: quiet, stderr: quiet })).toBe(0);
    const local = await startPlayground({ port: 0, specs: [dir] });
    const narrow = await browser.newPage({ viewport: { width: 700, height: 1000 } });
    try {
      await narrow.goto(local.url);
      await expect.poll(() => narrow.inputValue('#spec'), { timeout: 15_000 }).toBe('acme_crm');
      // The form holds tests/acme_crm/record.json, so the preview shows requests, not record errors.
      await expect.poll(() => narrow.inputValue('#cfg-list_id'), { timeout: 15_000 }).toBe('example-list');
      expect(await narrow.inputValue('#name')).toBe('Acme CRM — example');
      await expect.poll(() => narrow.locator('#preview pre.request').count(), { timeout: 15_000 }).toBe(1);
      expect(await narrow.textContent('#preview-msg')).toBe('1 request(s), secrets redacted');
      expect(await narrow.isDisabled('#send')).toBe(false);

      // Every word of the preview sits on one line (a 700 px window is one column: nothing is split mid-word),
      // and the page does not scroll sideways.
      // (In-page code as text: the test project has no DOM types.)
      const split = (await narrow.evaluate(`(() => {
        const text = document.querySelector('#preview pre.request').firstChild;
        const out = [];
        for (const m of text.data.matchAll(/\\S+/g)) {
          const r = document.createRange();
          r.setStart(text, m.index);
          r.setEnd(text, m.index + m[0].length);
          if (new Set([...r.getClientRects()].map((c) => Math.round(c.top))).size > 1) out.push(m[0]);
        }
        return out;
      })()`)) as string[];
      expect(split).toEqual([]);
      expect(await narrow.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(700);
      mkdirSync(RESULTS, { recursive: true });
      await narrow.screenshot({ path: join(RESULTS, 'playground-700px.png'), fullPage: true });

      // A record the spec refuses: Send is disabled until it is fixed.
      await narrow.fill('#cfg-list_id', '');
      await expect.poll(() => narrow.textContent('#preview-msg'), { timeout: 15_000 }).toMatch(/integration record:[\s\S]*list_id/);
      expect(await narrow.isDisabled('#send')).toBe(true);
      await narrow.fill('#cfg-list_id', 'example-list');
      await expect.poll(() => narrow.isDisabled('#send'), { timeout: 15_000 }).toBe(false);
    } finally {
      await narrow.close();
      await local.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('playground for a spec without an emulator (capture vendor), in a 700 px window', () => {
  it('sends to the capture vendor: the attempts list has the token request, the trace view shows a failed event hint, no secret or token is on the page', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'si-playground-capture-'));
    const examples = new URL('../examples/specs/', import.meta.url).pathname;
    cpSync(join(examples, 'acme_oauth_events.yaml'), join(dir, 'acme_oauth_events.yaml'));
    const pin = readFileSync(join(examples, 'tests/acme_oauth_events/lead_submitted.yaml'), 'utf8');
    const { parse } = await import('yaml');
    const record = (parse(pin) as { record: Record<string, unknown> }).record;
    mkdirSync(join(dir, 'tests', 'acme_oauth_events'), { recursive: true });
    writeFileSync(join(dir, 'tests', 'acme_oauth_events', 'record.json'), JSON.stringify(record));
    const local = await startPlayground({ port: 0, specs: [dir] });
    const narrow = await browser.newPage({ viewport: { width: 700, height: 1000 } });
    try {
      await narrow.goto(local.url);
      await expect.poll(() => narrow.inputValue('#spec'), { timeout: 15_000 }).toBe('acme_oauth_events');
      await expect.poll(() => narrow.locator('#preview pre.request').count(), { timeout: 15_000 }).toBe(2);
      expect(await narrow.textContent('#send')).toBe('Send to capture vendor');
      await narrow.click('#send');
      await expect.poll(() => narrow.textContent('#outcome-status'), { timeout: 20_000 }).toBe('delivered');
      expect((await narrow.textContent('#attempts'))!.split('\n').map((l) => l.replace(/\(\d+ ms\)/, ''))).toEqual(['1. auth.token → 200 ', '2. send → 202 ']);
      const trace = (await narrow.textContent('#trace'))!;
      // As sent: to the capture vendor, the host it was meant for in X-Forwarded-Host; credentials redacted.
      expect(trace).toMatch(/request auth\.token: POST http:\/\/127\.0\.0\.1:\d+\/oauth2\/v1\/token\n\s+Content-Type: application\/x-www-form-urlencoded\n\s+Authorization: \[redacted\]\n\s+X-Forwarded-Host: mytenant\.login\.acme\.example/);
      expect(trace).toMatch(/http auth\.token: HTTP 200 .*\n\s+answer: \{"access_token":"\[redacted\]","expires_in":3600,"token_type":"Bearer"\}/);
      expect(trace).toMatch(/http send: HTTP 202/);
      expect(await narrow.textContent('#received')).toContain('auth.token POST mytenant.login.acme.example/oauth2/v1/token → 200');

      // A failure the spec's rules name, simulated: the trace shows the outcome with the rule's hint.
      await narrow.selectOption('#simulate', 'send answers 403 insufficient_scope');
      await narrow.click('#send');
      await expect.poll(() => narrow.textContent('#outcome-status'), { timeout: 20_000 }).toBe('failed');
      await expect.poll(() => narrow.textContent('#trace'), { timeout: 15_000 }).toContain('hint: The token lacks the scope the Events API needs');
      expect(await narrow.textContent('#trace')).toContain('http send: HTTP 403');
      mkdirSync(RESULTS, { recursive: true });
      await narrow.screenshot({ path: join(RESULTS, 'playground-capture-700px.png'), fullPage: true });

      const text = (await narrow.evaluate('document.body.innerText')) as string;
      const html = (await narrow.content()) + text;
      expect(html).not.toContain(String((record.config as Record<string, string>).client_secret));
      expect(html).not.toMatch(/cap_access_token_/);
      expect(await narrow.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(700);
    } finally {
      await narrow.close();
      await local.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
