/**
 * possibly_duplicated survives whatever fails after it (issue 8 item 2): once a send attempt broke after
 * the request went out, the vendor may hold the event, so its outcome keeps the flag even when a later
 * stage — here the token fetch a retry needed — fails instead. A stub vendor on 127.0.0.1 plays it out
 * deterministically: the first send is read and its connection dropped, the retry gets 401, and the
 * re-authentication it triggers is refused.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Engine } from '../engine/index.js';
import { startStubVendor, type StubVendor } from './helpers/stub-vendor.js';
import { event, FAST_RETRY, within } from './helpers/fixtures.js';

const spec = (batch: boolean) => `
spec_version: 1
vendor: stub_${batch ? 'batch' : 'single'}
title: Stub vendor with a token
version: 1.0.0
config:
  type: object
  properties:
    client_secret: { type: string, secret: true, description: the secret }
allowed_hosts: [api.stub.example]
auth:
  - name: token
    request:
      method: POST
      url: https://api.stub.example/token
      body:
        secret: $config.client_secret
    result:
      access_token: access_token
    expires_in: expires_in
    cache_key: [client_secret]
    errors:
      - when: { status: 401 }
        action: fail
        hint: check the secret
send:
  request:
    method: POST
    url: https://api.stub.example/send
    headers:
      Authorization: Bearer {$auth.token.access_token}
    body:
      id: event_id
  success: { status: [2xx] }
  errors:
    - when: { status: 401 }
      action: reauth
${batch ? '  batch:\n    max_items: 5\n    max_wait_ms: 0\n    body:\n      items: $items\n' : ''}`;

let stub: StubVendor;
let engine: Engine;
beforeEach(async () => {
  stub = await startStubVendor();
  const dir = await mkdtemp(join(tmpdir(), 'dup-flag-'));
  await writeFile(join(dir, 'single.yaml'), spec(false));
  await writeFile(join(dir, 'batch.yaml'), spec(true));
  engine = await Engine.load({ specs: dir, endpoint: stub.url, retry: FAST_RETRY });
  let tokens = 0;
  // The first token is good; every later one is refused.
  stub.answer('/token', () => (++tokens === 1 ? { status: 200, body: { access_token: 'tok-first-0001', expires_in: 3600 } } : { status: 401, body: { error: 'invalid_client' } }));
  let sends = 0;
  // The first send is read and its connection dropped (the vendor may have it); the retry is told its token expired.
  stub.answer('/send', () => (++sends === 1 ? { destroy: true } : { status: 401, body: { error: 'expired' } }));
});
afterEach(async () => {
  engine?.close();
  await stub.close();
});

const record = (vendor: string) => ({ source_id: 's', name: vendor, vendor, enabled: true, config: { client_secret: 'stub-secret-value' }, retry: { max_elapsed_ms: 5_000 } });

describe('possibly_duplicated after a send of unknown fate', () => {
  it('the only attempt allowed breaks after the request went out: failed network_error, and flagged', async () => {
    stub.answer('/send', { destroy: true });
    const o = await within(10_000, engine.createIntegration({ ...record('stub_single'), retry: { max_attempts: 1 } }).deliver(event()));
    expect(stub.requests.map((r) => r.path)).toEqual(['/token', '/send']);
    expect(o).toMatchObject({ status: 'failed', reason: 'network_error', attempts: 1, possibly_duplicated: true });
  });

  for (const vendor of ['stub_single', 'stub_batch']) {
    it(`${vendor}: the token fetch for the retry fails — the token's error is reported and the flag kept`, async () => {
      const [o] = await within(10_000, engine.createIntegration(record(vendor)).deliverAll([event()]));
      expect(stub.requests.map((r) => r.path)).toEqual(['/token', '/send', '/send', '/token']);
      expect(o).toMatchObject({ status: 'failed', reason: 'auth_failed', http_status: 401, hint: 'check the secret', possibly_duplicated: true, attempts: 2 });
    });
  }
});
