/**
 * Issue 18 §2–§4: batch refusals that name their bad items (`item_errors.others`), batches that split
 * (413 or a `split` rule), limits from the record's config, `group_by` lists, and optional request parts
 * (`{?expr}`). Specs written here, run against a local stub vendor over real HTTP; every event must end
 * with exactly one outcome however often its batch was resent or halved.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Engine, RecordError, checkSpecText, type Integration, type Outcome } from '../engine/index.js';
import { parseTemplate, renderTemplate } from '../engine/compile/template.js';
import { startStubVendor, type StubAnswer, type StubVendor } from './helpers/stub-vendor.js';
import { event } from './helpers/fixtures.js';

const SPEC = (vendor: string, send: string) =>
  [
    'spec_version: 1',
    `vendor: ${vendor}`,
    'title: Stub batch language',
    'version: 1.0.0',
    'allowed_hosts: [api.stub.example]',
    // list, region and sub_account fill templates; plan_max_items is a record's own batch limit.
    'config: { type: object, properties: { list: { type: string }, region: { type: string }, sub_account: { type: string }, plan_max_items: { type: integer, minimum: 1 } } }',
    'send:',
    send,
  ].join('\n');

const BATCH = (batch: string, errors = '', url = 'https://api.stub.example/batch') => `  request:
    method: POST
    url: ${url}
    body:
      id: event_id
      big: properties.big
  success: { status: [2xx] }
${errors}
  batch:
    max_wait_ms: 0
${batch}`;

const REFUSE = (others: string) => BATCH(`    max_items: 10
    body:
      items: $items
    item_errors:
      status: [400]
      list: errors[]
      index: i
      message: message
      others: ${others}
`);

let stub: StubVendor;
let engine: Engine;
beforeAll(async () => {
  stub = await startStubVendor();
  const dir = await mkdtemp(join(tmpdir(), 'batch-language-'));
  const files: Record<string, string> = {
    resend: SPEC('stub_resend', REFUSE('resend')),
    failed: SPEC('stub_failed', REFUSE('failed')),
    split: SPEC('stub_split', BATCH('    max_items: 10\n    body:\n      items: $items\n')),
    split_rule: SPEC('stub_split_rule', BATCH('    max_items: 10\n    body:\n      items: $items\n', '  errors:\n    - when: { status: 400, message_contains: too many }\n      action: split\n  vendor_error:\n    message: error')),
    plan: SPEC('stub_plan', BATCH('    max_items: $config.plan_max_items\n    body:\n      items: $items\n')),
    grouped: SPEC('stub_grouped', BATCH('    max_items: 10\n    group_by: [$config.list, properties.lead_type]\n    body:\n      list: $group[0]\n      kind: $group[1]\n      items: $items\n')),
    optional: SPEC(
      'stub_optional',
      `  request:
    method: POST
    url: https://api.stub.example/one?list={$config.list}&region={?$config.region}
    headers:
      X-Sub-Account: "{?$config.sub_account}"
      X-List: "{$config.list}"
    body:
      id: event_id
`,
    ),
  };
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, `${name}.yaml`), text);
  engine = await Engine.load({ specs: dir, endpoint: stub.url, timeouts: { connect_ms: 2000, response_ms: 5000 } });
});
afterAll(async () => {
  engine.close();
  await stub.close();
});
beforeEach(() => stub.requests.splice(0));

const integration = (vendor: string, config: Record<string, unknown> = { list: 'l1' }): Integration =>
  engine.createIntegration({ source_id: 'src_1', name: vendor, vendor, enabled: true, config });
const batches = () => stub.requests.filter((r) => r.path === '/batch').map((r) => JSON.parse(r.body).items as { id: string; big?: boolean }[]);
const ten = () => Array.from({ length: 10 }, () => event());

/** Exactly one outcome per event, in order. */
function onePerEvent(events: { event_id?: unknown }[], outcomes: Outcome[]): void {
  expect(outcomes.map((o) => o.event_id)).toEqual(events.map((e) => e.event_id));
}

/** The stub refuses any batch holding one of `bad` (by event id), naming those items; takes the rest. */
function refuseFor(bad: string[]): void {
  stub.answer('/batch', (body) => {
    const errors = (body.items as { id: string }[]).flatMap((it, i) => (bad.includes(it.id) ? [{ i, message: `${it.id} has an invalid time` }] : []));
    return errors.length ? { status: 400, body: { code: 400, errors } } : { status: 200, body: { code: 200 } };
  });
}

describe('item_errors.others (a refusal that names its bad items)', () => {
  it('resend: a batch refused for 2 of 10 items sends the other 8 once more; the 2 fail with their own reasons', async () => {
    const events = ten();
    const bad = [events[3]!.event_id, events[7]!.event_id];
    refuseFor(bad);
    const outcomes = await integration('stub_resend').deliverAll(events);
    onePerEvent(events, outcomes);
    const sent = batches();
    expect(sent.map((b) => b.length)).toEqual([10, 8]);
    expect(sent[1]!.map((i) => i.id)).toEqual(events.filter((e) => !bad.includes(e.event_id)).map((e) => e.event_id));
    expect(outcomes.filter((o) => o.status === 'delivered')).toHaveLength(8);
    expect(outcomes[3]).toMatchObject({ status: 'failed', reason: 'item_rejected', message: `${bad[0]} has an invalid time`, http_status: 400, retryable: false });
    expect(outcomes[7]).toMatchObject({ status: 'failed', reason: 'item_rejected', message: `${bad[1]} has an invalid time` });
    // The resent events made two requests; the answer that decided them is the resend's.
    expect(outcomes[0]).toMatchObject({ status: 'delivered', http_status: 200, attempts: 2, batch_size: 8 });
  });

  it('resend happens once: a resend refused again fails the rest as not sent (retryable), with no third request', async () => {
    const events = ten();
    stub.answer('/batch', (body) => {
      const items = body.items as { id: string }[];
      // First answer names item 0; the resend's names its own item 0 (another event).
      return { status: 400, body: { errors: [{ i: 0, message: `${items[0]!.id} bad` }] } };
    });
    const outcomes = await integration('stub_resend').deliverAll(events);
    onePerEvent(events, outcomes);
    expect(batches().map((b) => b.length)).toEqual([10, 9]);
    expect(outcomes.slice(0, 2).map((o) => o.reason)).toEqual(['item_rejected', 'item_rejected']);
    for (const o of outcomes.slice(2)) expect(o).toMatchObject({ status: 'failed', reason: 'http_error', retryable: true, http_status: 400 });
    expect(outcomes[2]!.message).toContain('refused the batch again');
  });

  it('failed: the unlisted items fail as not sent (retryable), nothing is resent', async () => {
    const events = ten();
    refuseFor([events[1]!.event_id]);
    const outcomes = await integration('stub_failed').deliverAll(events);
    onePerEvent(events, outcomes);
    expect(batches()).toHaveLength(1);
    expect(outcomes[1]).toMatchObject({ reason: 'item_rejected' });
    expect(outcomes.filter((o) => o.reason === 'http_error' && o.retryable)).toHaveLength(9);
  });
});

/** Deliver `events` through `vendor`, the stub answering what `refuse` says (else 200); one outcome per event checked. */
async function deliverWith(vendor: string, refuse: (items: { id: string; big?: boolean }[]) => StubAnswer | undefined, events = ten()): Promise<Outcome[]> {
  stub.answer('/batch', (body) => refuse(body.items) ?? { status: 200, body: {} });
  const outcomes = await integration(vendor).deliverAll(events);
  onePerEvent(events, outcomes);
  return outcomes;
}

describe('split (413, or a rule with action split)', () => {
  it('a 413 halves the batch recursively until the vendor takes it; every event delivered once', async () => {
    const events = ten();
    const outcomes = await deliverWith('stub_split', (items) => (items.length > 3 ? { status: 413, body: { error: 'payload too large' } } : undefined), events);
    expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);
    // 10 -> 5 + 5 -> 3 + 2 + 3 + 2: the accepted requests carry each event exactly once.
    expect(batches().map((b) => b.length)).toEqual([10, 5, 3, 2, 5, 3, 2]);
    const accepted = batches().filter((b) => b.length <= 3).flat().map((i) => i.id);
    expect(accepted.sort()).toEqual(events.map((e) => e.event_id).sort());
  });

  it('an item refused alone as too large fails with item_too_large; the others are delivered', async () => {
    const events = ten();
    events[6] = event({ properties: { ...events[6]!.properties, big: true } });
    const outcomes = await deliverWith('stub_split', (items) => (items.some((i) => i.big) ? { status: 413, body: { error: 'too large' } } : undefined), events);
    expect(outcomes[6]).toMatchObject({ status: 'failed', reason: 'item_too_large', retryable: false, http_status: 413, batch_size: 1 });
    expect(outcomes.filter((o) => o.status === 'delivered')).toHaveLength(9);
  });

  it('a rule with action split reads a vendor message as "too large"', async () => {
    const outcomes = await deliverWith('stub_split_rule', (items) => (items.length > 5 ? { status: 400, body: { error: 'too many events in one request' } } : undefined));
    expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);
    expect(batches().map((b) => b.length)).toEqual([10, 5, 5]);
  });
});

describe('limits from the record, group_by lists', () => {
  it('max_items: $config.plan_max_items is each record’s own limit', async () => {
    stub.answer('/batch', { status: 200, body: {} });
    const outcomes = await integration('stub_plan', { list: 'l1', plan_max_items: 2 }).deliverAll(Array.from({ length: 5 }, () => event()));
    expect(outcomes.every((o) => o.status === 'delivered')).toBe(true);
    expect(batches().map((b) => b.length)).toEqual([2, 2, 1]);
  });

  it.each([[undefined], [0], ['3'], [2.5]])('a record whose plan_max_items is %j is refused, naming the field', (v) => {
    const config = v === undefined ? { list: 'l1' } : { list: 'l1', plan_max_items: v };
    let error: unknown;
    try {
      integration('stub_plan', config);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RecordError);
    expect(String((error as RecordError).problems)).toMatch(/config\.plan_max_items/);
  });

  it('group_by with two keys: events share a request only when both agree; $group is the list of values', async () => {
    stub.answer('/batch', { status: 200, body: {} });
    const events = [event(), event({ properties: { ...event().properties, lead_type: 'demo' } }), event()];
    const outcomes = await integration('stub_grouped').deliverAll(events);
    onePerEvent(events, outcomes);
    const bodies = stub.requests.filter((r) => r.path === '/batch').map((r) => JSON.parse(r.body));
    expect(bodies.map((b) => [b.list, b.kind, b.items.length]).sort()).toEqual([['l1', 'demo', 1], ['l1', 'newsletter', 2]]);
  });
});

describe('optional request parts: {?expr}', () => {
  it('an absent value leaves out its header and its query parameter; the event is delivered, and preview shows the same request', async () => {
    stub.answer('/one', { status: 200, body: {} });
    const without = integration('stub_optional', { list: 'l1' });
    const [o] = await without.deliverAll([event()]);
    expect(o).toMatchObject({ status: 'delivered' });
    const sent = stub.requests[0]!;
    expect(sent.url).toBe('/one?list=l1');
    expect(sent.headers['x-sub-account']).toBeUndefined();
    expect(sent.headers['x-list']).toBe('l1');
    const [preview] = await without.preview(event());
    expect(preview!.url).toBe(`${stub.url}/one?list=l1`);
    expect(Object.keys(preview!.headers)).not.toContain('X-Sub-Account');

    stub.requests.splice(0);
    const withBoth = integration('stub_optional', { list: 'l1', region: 'eu west', sub_account: 'acct-7' });
    await withBoth.deliverAll([event()]);
    expect(stub.requests[0]!.url).toBe('/one?list=l1&region=eu%20west');
    expect(stub.requests[0]!.headers['x-sub-account']).toBe('acct-7');
    const [p2] = await withBoth.preview(event());
    expect(p2!.url).toBe(`${stub.url}/one?list=l1&region=eu%20west`);
    expect(p2!.headers['X-Sub-Account']).toBe('acct-7');
  });
});

describe('renderTemplate with optional placeholders (pure)', () => {
  const url = (t: string, values: unknown[]) => renderTemplate(parseTemplate(t), values, 'url');
  it.each([
    ['https://h/p?a={?$x}', [undefined], 'https://h/p'],
    ['https://h/p?a={?$x}&b=2', [null], 'https://h/p?b=2'],
    ['https://h/p?a=1&b={?$x}', [''], 'https://h/p?a=1'],
    ['https://h/p?a=1&b={?$x}&c={?$y}#top', [undefined, undefined], 'https://h/p?a=1#top'],
    ['https://h/p?a={?$x}#top', [undefined], 'https://h/p#top'],
    ['https://h/p?a={?$x}&b={$y}', ['a b', 'c'], 'https://h/p?a=a%20b&b=c'],
  ])('%s with %j renders %s', (t, values, out) => expect(url(t, values)).toBe(out));
  it('a header is left out only when its optional placeholder has no value; a required one still fails', () => {
    expect(renderTemplate(parseTemplate('Bearer {?$t}'), [undefined], 'header')).toBeUndefined();
    expect(renderTemplate(parseTemplate('Bearer {?$t}'), ['x'], 'header')).toBe('Bearer x');
    expect(() => renderTemplate(parseTemplate('Bearer {$t}'), [undefined], 'header')).toThrow(/has no value/);
  });
});

describe('load-time checks (file:line:col)', () => {
  const where = (text: string, token: string): { line: number; col: number } => {
    const lines = text.split('\n');
    const line = lines.findIndex((l) => l.includes(token));
    return { line: line + 1, col: lines[line]!.indexOf(token) + 1 };
  };
  const cases: [string, string, string, RegExp][] = [
    ['an optional placeholder in a URL path', SPEC('x', BATCH('    body: $items\n', '', 'https://api.stub.example/{?$config.list}/batch')), 'url:', /whole value of a query parameter/],
    ['others: resend without item_errors.status', SPEC('x', BATCH('    body: $items\n    item_errors:\n      list: errors\n      index: i\n      others: resend\n')), 'others:', /list those statuses in item_errors.status/],
    ['split on a send without batch', SPEC('x', '  request:\n    method: POST\n    url: https://api.stub.example/one\n  errors:\n    - when: { status: 413 }\n      action: split\n'), 'action: split', /split halves a batch/],
    ['max_items from a config field that is not declared', SPEC('x', BATCH('    max_items: $config.plan_items\n    body: $items\n')), '    max_items:', /not a config field/],
    ['max_items from a string config field', SPEC('x', BATCH('    max_items: $config.list\n    body: $items\n')), '    max_items:', /must be declared type: integer/],
  ];
  it.each(cases)('%s', (_what, text, token, message) => {
    const { diagnostics } = checkSpecText('spec.yaml', text);
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]!.message).toMatch(message);
    expect(diagnostics[0]).toMatchObject({ file: 'spec.yaml', line: where(text, token).line });
  });

  it('an optional placeholder is pointed at exactly, and a method cannot be optional', () => {
    const text = SPEC('x', '  request:\n    method: "{?$config.list}"\n    url: https://api.stub.example/one?a={?$config.list}x\n');
    const { diagnostics } = checkSpecText('spec.yaml', text);
    expect(diagnostics.map((d) => d.message)).toEqual(expect.arrayContaining([expect.stringMatching(/whole value of a query parameter/), expect.stringMatching(/a method cannot be optional/)]));
    expect(diagnostics).toHaveLength(2);
    const url = diagnostics.find((d) => d.path.endsWith('url'))!;
    expect(url.col).toBe(where(text, '{?$config.list}x').col);
  });
});
