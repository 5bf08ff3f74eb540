/**
 * Compiling `send.batch`: its expressions, and the checks on what the batch constructs allow — limits
 * read from the record's config (`max_items: $config.plan_max_items`), `item_errors.others`, `group_by`
 * lists and the `split` error action. Every problem is reported at its key (file:line:col).
 */
import type { KeyPath } from '../load/source.js';
import type { BatchSpec, IntegrationSpec, JsonSchema } from '../spec/types.js';
import type { CompiledBatch, CompiledRule } from './program.js';
import type { ReferenceScope } from './references.js';
import { statusMatcher, type Compiler } from './spec.js';

type Scope = (variables: string[], auth?: boolean, noInput?: boolean) => ReferenceScope;

/**
 * Batched sends only, after the spec's own rules: 413 (Payload Too Large) splits the batch in halves, as
 * the vendor asks, instead of failing every event of it.
 */
export const BATCH_DEFAULT_RULES: CompiledRule[] = [
  {
    status: (s) => s === 413,
    action: 'split',
    origin: 'default',
    hint: 'The vendor refused this event alone as too large: shorten what the spec maps into it (or leave out the largest fields), then send it again.',
  },
];

/** How many times a batch may be halved (2^12 = 4096 items reach single items); see docs/spec-language.md. */
export const MAX_SPLIT_DEPTH = 12;

const CONFIG_FIELD = /^\s*\$config\s*\.\s*([A-Za-z_]\w*)\s*$/;

/** `max_items` / `max_bytes`: a number, or `$config.<field>` naming a declared integer field. */
function limitField(c: Compiler, path: KeyPath, v: number | string | undefined, config: JsonSchema): string | undefined {
  if (typeof v !== 'string') return undefined;
  const m = CONFIG_FIELD.exec(v);
  if (!m) {
    c.problem(path, `${path.at(-1)} is a number or $config.<field> (a record's own limit), not the expression '${v}'`);
    return undefined;
  }
  const field = m[1]!;
  const prop = ((config.properties ?? {}) as Record<string, Record<string, unknown>>)[field];
  if (!prop) c.problem(path, `${path.at(-1)} reads $config.${field}, which is not a config field`);
  else if (prop.type !== 'integer') {
    c.problem(path, `${path.at(-1)} reads $config.${field}, which must be declared type: integer (with minimum: 1) so every record's value is checked as a number`);
  }
  return field;
}

export function compileBatch(c: Compiler, b: BatchSpec, s: { scope: Scope; bodyScope: ReferenceScope; configSchema: JsonSchema }): CompiledBatch | undefined {
  const { scope, bodyScope } = s;
  const bp = ['send', 'batch'];
  const itemMapping = b.item ? c.mapping([...bp, 'item'], b.item, bodyScope) : undefined;
  const envelope = c.mapping([...bp, 'body'], b.body, scope(b.group_by === undefined ? ['config', 'items'] : ['config', 'items', 'group'], false, true));
  const r = b.results;
  const opt = (path: KeyPath, src: string | undefined, sc: ReferenceScope) => (src === undefined ? undefined : c.expr(path, src, sc));
  const results = r && {
    items: opt([...bp, 'results', 'items'], r.items, scope(['config'])),
    ok: opt([...bp, 'results', 'ok'], r.ok, scope(['config'])),
    id: opt([...bp, 'results', 'id'], r.id, scope(['config'])),
    message: opt([...bp, 'results', 'message'], r.message, scope(['config'])),
    code: opt([...bp, 'results', 'code'], r.code, scope(['config'])),
    ...(r.hint ? { hint: r.hint } : {}),
  };
  let itemErrors: CompiledBatch['itemErrors'];
  if (b.item_errors) {
    const e = b.item_errors;
    const ep = [...bp, 'item_errors'];
    const list = c.expr([...ep, 'list'], e.list, scope(['config']));
    const index = c.expr([...ep, 'index'], e.index, scope(['config']));
    const others = e.others ?? 'delivered';
    // `others` is about non-success answers that list items; without `status` there are none to read.
    if (others !== 'delivered' && !e.status) {
      c.problem([...ep, 'others'], `others: ${others} applies to refusals (non-success statuses) that list their bad items: list those statuses in item_errors.status`);
    }
    if (list && index) {
      itemErrors = {
        list,
        index,
        others,
        ...(e.code ? { code: opt([...ep, 'code'], e.code, scope(['config']))! } : {}),
        ...(e.message ? { message: opt([...ep, 'message'], e.message, scope(['config']))! } : {}),
        ...(e.hint ? { hint: e.hint } : {}),
        ...(e.status ? { status: statusMatcher(e.status) } : {}),
      };
    }
  }
  let groupBy: CompiledBatch['groupBy'];
  if (Array.isArray(b.group_by)) {
    const keys = b.group_by.map((g, i) => c.expr([...bp, 'group_by', i], g, bodyScope));
    if (keys.every((k) => k)) groupBy = keys as NonNullable<(typeof keys)[number]>[];
  } else if (b.group_by !== undefined) groupBy = c.expr([...bp, 'group_by'], b.group_by, bodyScope);
  let poll: CompiledBatch['poll'];
  if (b.poll) {
    const p = b.poll;
    const pp = [...bp, 'poll'];
    for (const k of ['status', 'results'] as const) if (p[k].body !== undefined) c.problem([...pp, k, 'body'], 'poll requests are sent without a body');
    const status = c.request([...pp, 'status'], p.status, scope(['config', 'auth', 'response'], true, true));
    const results2 = c.request([...pp, 'results'], p.results, scope(['config', 'auth', 'response', 'status', 'page'], true, true));
    const done = c.expr([...pp, 'done'], p.done, scope(['config']));
    const errors = c.expr([...pp, 'errors'], p.errors, scope(['config']));
    const index = c.expr([...pp, 'index'], p.index, scope(['config']));
    if (status && results2 && done && errors && index) {
      poll = {
        ...(p.when ? { when: opt([...pp, 'when'], p.when, scope(['config'], false, true))! } : {}),
        status,
        done,
        interval_ms: p.interval_ms ?? 1_000,
        max_wait_ms: p.max_wait_ms ?? 60_000,
        results: results2,
        ...(p.more ? { more: opt([...pp, 'more'], p.more, scope(['config', 'page']))! } : {}),
        errors,
        index,
        ...(p.message ? { message: opt([...pp, 'message'], p.message, scope(['config']))! } : {}),
        ...(p.code ? { code: opt([...pp, 'code'], p.code, scope(['config']))! } : {}),
        ...(p.hint ? { hint: p.hint } : {}),
      };
    }
  }
  const maxItemsField = limitField(c, [...bp, 'max_items'], b.max_items, s.configSchema);
  const maxBytesField = limitField(c, [...bp, 'max_bytes'], b.max_bytes, s.configSchema);
  if (!envelope) return undefined;
  return {
    max_items: typeof b.max_items === 'number' ? b.max_items : Number.MAX_SAFE_INTEGER,
    max_bytes: typeof b.max_bytes === 'number' ? b.max_bytes : 5_000_000,
    ...(maxItemsField || maxBytesField ? { limitFields: { ...(maxItemsField ? { max_items: maxItemsField } : {}), ...(maxBytesField ? { max_bytes: maxBytesField } : {}) } } : {}),
    max_wait_ms: b.max_wait_ms ?? 1_000,
    max_in_flight: b.max_in_flight ?? 4,
    ...(itemMapping ? { item: itemMapping } : {}),
    body: envelope,
    ...(results ? { results: Object.fromEntries(Object.entries(results).filter(([, v]) => v !== undefined)) as CompiledBatch['results'] } : {}),
    ...(itemErrors ? { itemErrors } : {}),
    ...(groupBy ? { groupBy } : {}),
    ...(poll ? { poll } : {}),
  };
}

/** `action: split` halves a batch: on an auth stage, or a send that does not batch, there is nothing to halve. */
export function splitRuleProblems(spec: IntegrationSpec): { path: KeyPath; message: string }[] {
  const out: { path: KeyPath; message: string }[] = [];
  (spec.auth ?? []).forEach((st, i) =>
    (st.errors ?? []).forEach((r, j) => {
      if (r.action === 'split') out.push({ path: ['auth', i, 'errors', j, 'action'], message: 'split halves a batch of events; an auth request carries none (use fail or retry)' });
    }),
  );
  if (!spec.send.batch) {
    (spec.send.errors ?? []).forEach((r, j) => {
      if (r.action === 'split') out.push({ path: ['send', 'errors', j, 'action'], message: 'split halves a batch of events, and this spec sends one event per request: add send.batch, or use fail' });
    });
  }
  return out;
}
