/**
 * Load-time checks beyond the schema: rules that could never match, bare input paths where there is
 * no input, poll requests with bodies; plus what the language promises at run time for inherited
 * parts: config defaults, tokens shared by specs that share an auth stage, and a batch whose results
 * cannot be read.
 */
import { mkdtemp, readFile, writeFile, mkdir, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLED_SPECS_DIR, Engine, checkSpecText, checkSpecs } from '../engine/index.js';
import { event, referenceRecord, setup, type Json } from './helpers/fixtures.js';
import type { Emulator } from '../emulator/marketing-cloud.js';

const minimal = (extra: string) => `spec_version: 1
vendor: example
title: Example
version: 1.0.0
config: {type: object, properties: {api_key: {type: string, secret: true}, region: {type: string, default: eu}}}
allowed_hosts: [api.example.com]
${extra}`;

const messages = (text: string) => checkSpecText('/specs/example.yaml', text).diagnostics.map((d) => `${d.line}:${d.col} ${d.message}`);

describe('load-time checks', () => {
  it('refuses rules that can never match', () => {
    const m = messages(
      minimal(`send:
  request: {method: POST, url: "https://api.example.com/{$config.region}"}
  errors:
    - when: {status: 500, network: true}
      action: retry
    - when: {network: false}
      action: retry
`),
    );
    expect(m).toEqual([
      expect.stringMatching(/^10:13 a rule matches either a network error or a vendor answer/),
      expect.stringMatching(/^12:23 network: false matches nothing/),
    ]);
  });

  it('refuses reauth in an auth stage and a bare input path where nothing is the input', () => {
    const m = messages(
      minimal(`auth:
  - name: token
    request: {method: POST, url: https://api.example.com/token, body: {key: api_key}}
    result: {access_token: access_token}
    cache_key: [api_key]
    errors:
      - when: {status: 401}
        action: reauth
send:
  request: {method: POST, url: https://api.example.com/x, headers: {Authorization: "Bearer {$auth.token.access_token}"}}
`),
    );
    expect(m).toEqual([
      expect.stringMatching(/^9:77 'api_key' reads the input, but nothing is the input here: write \$config.api_key/),
      expect.stringMatching(/^14:17 reauth is for requests made with a token/),
    ]);
  });

  it('reports expression problems along with schema problems, not only the first kind', () => {
    const m = messages(
      minimal(`send:
  request:
    method: FETCH
    url: https://api.example.com/{$config.nope}
`),
    );
    expect(m).toEqual([expect.stringMatching(/^9:13 must be one of GET, POST/), expect.stringMatching(/^10:43 \$config.nope is not a config field/)]);
  });

  it('refuses a body on a poll request', () => {
    const m = messages(
      minimal(`send:
  request: {method: POST, url: https://api.example.com/x, body: {id: event_id}}
  batch:
    max_items: 10
    body: {items: $items}
    poll:
      status: {method: GET, url: "https://api.example.com/status/{$response.id}", body: {x: '"y"'}}
      done: "true"
      results: {method: GET, url: "https://api.example.com/results/{$response.id}"}
      errors: items
      index: i
`),
    );
    expect(m).toEqual([expect.stringMatching(/^13:\d+ poll requests are sent without a body/)]);
  });

  it('reports a problem in a shared partial once, not once per spec that extends it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'partials-'));
    await mkdir(join(dir, 'partials'));
    const partial = await readFile(join(BUNDLED_SPECS_DIR, 'partials', 'salesforce_marketing_cloud_auth.yaml'), 'utf8');
    await writeFile(join(dir, 'partials', 'salesforce_marketing_cloud_auth.yaml'), partial.replace('client_id: $config.client_id', 'client_id: $config.clientid'));
    for (const f of ['salesforce_marketing_cloud.yaml', 'salesforce_marketing_cloud_journey_batch.yaml', 'salesforce_marketing_cloud_data_extensions.yaml']) {
      await copyFile(join(BUNDLED_SPECS_DIR, f), join(dir, f));
    }
    const { diagnostics } = await checkSpecs([dir]);
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]!.file).toBe(join(dir, 'partials', 'salesforce_marketing_cloud_auth.yaml'));
    expect(diagnostics[0]!.message).toMatch(/\$config.clientid is not a config field/);
  });
});

describe('inherited behaviour at run time', () => {
  let emu: Emulator;
  let engine: Engine;
  let close: () => Promise<void>;
  beforeAll(async () => ({ emu, engine, close } = await setup()));
  afterAll(() => close());

  const deRecord = (config: Json = {}): Json => {
    const r = referenceRecord();
    delete r.config.event_definition_key;
    return { ...r, vendor: 'salesforce_marketing_cloud_data_extensions', name: 'DE', config: { ...r.config, data_extension_key: 'datafly_orders', ...config } };
  };

  it("applies a config field's default when the record leaves it out, without changing the record", async () => {
    const record = deRecord();
    const integration = engine.createIntegration(record);
    const [req] = await integration.preview(event({ event: 'Order Completed' })).then((r) => r.filter((x) => x.stage === 'send'));
    expect(req!.method).toBe('POST'); // mode: insert by default
    expect(record.config.mode).toBeUndefined();
    expect(record.config.wait_for_results).toBeUndefined();
  });

  it('shares one token between specs that extend the same auth stage, for the same credentials', async () => {
    emu.reset();
    const fresh = await Engine.load({ endpoint: emu.url });
    try {
      await fresh.createIntegration(referenceRecord()).deliver(event());
      await fresh.createIntegration(deRecord()).deliverAll([event({ event: 'Order Completed', properties: { order_id: 'o-9', email: 'a@b.c' } })]);
      expect(emu.tokenRequests()).toHaveLength(1);
    } finally {
      fresh.close();
    }
  });

  it('reports a batch the vendor accepted as delivered (unconfirmed) when its results cannot be read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'poll-'));
    await mkdir(join(dir, 'partials'));
    await copyFile(join(BUNDLED_SPECS_DIR, 'partials', 'salesforce_marketing_cloud_auth.yaml'), join(dir, 'partials', 'salesforce_marketing_cloud_auth.yaml'));
    const de = await readFile(join(BUNDLED_SPECS_DIR, 'salesforce_marketing_cloud_data_extensions.yaml'), 'utf8');
    await writeFile(join(dir, 'de.yaml'), de.replace('/data/v1/async/{$response.requestId}/status', '/data/v1/async/{$response.requestId}/no-such-status'));
    const local = await Engine.load({ specs: dir, endpoint: emu.url });
    try {
      emu.reset();
      const [outcome] = await local.createIntegration(deRecord()).deliverAll([event({ event: 'Order Completed', properties: { order_id: 'o-10' } })]);
      expect(outcome!.status).toBe('delivered');
      expect(outcome!.message).toMatch(/accepted, but its processing results could not be read/);
      expect(emu.rows('datafly_orders').length).toBeGreaterThan(0);
    } finally {
      local.close();
    }
  });

  it('gives every spec the default rules and their hints: an unreachable vendor is a retryable network_error', async () => {
    const local = await Engine.load({ endpoint: 'http://127.0.0.1:1' });
    try {
      const outcome = await local.createIntegration({ ...referenceRecord(), retry: { max_attempts: 2 } }).deliver(event());
      expect(outcome).toMatchObject({ status: 'failed', reason: 'network_error', retryable: true });
      expect(outcome.message).toMatch(/ECONNREFUSED.*gave up: max attempts after 2 attempt/);
      expect(outcome.hint).toMatch(/could not be reached/);
    } finally {
      local.close();
    }
  });
});
