/**
 * The fused body builder (compile/fuse.ts: a preset event's fields and the send body as one generated
 * function, as `deliver` runs it through run/body.ts `bodyBuilder`) against the reference, the field
 * mapping then the body evaluated one after the other (`buildEventBody`): same keys in the same order,
 * same values, same fields, same check failures, on random events for every preset event of every
 * shipped and example spec; and the shapes fusing refuses or hands back.
 */
import fc from 'fast-check';
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BUNDLED_SPECS_DIR, checkSpecText, checkSpecs } from '../engine/index.js';
import { explainSpec } from '../engine/compile/explain.js';
import { compileExpression, type AstNode } from '../engine/compile/expression.js';
import { FUSE_BAIL, fuseBody } from '../engine/compile/fuse.js';
import type { CompiledSpec } from '../engine/compile/spec.js';
import { bodyBuilder, buildEventBody } from '../engine/run/body.js';
import type { SignalEvent } from '../engine/run/event.js';
import { packagePath } from '../engine/paths.js';
import jsonata from 'jsonata';

const { specs } = await checkSpecs([BUNDLED_SPECS_DIR, packagePath('examples', 'specs')]);

/** Every `name` an AST mentions: the random events use them so that paths mostly find something. */
function namesIn(ast: unknown, names: Set<string>): void {
  if (Array.isArray(ast)) return ast.forEach((x) => namesIn(x, names));
  if (typeof ast !== 'object' || ast === null) return;
  const n = ast as AstNode;
  if (n.type === 'name' && typeof n.value === 'string') names.add(n.value);
  for (const v of Object.values(n)) namesIn(v, names);
}

const scalar = fc.oneof(
  fc.constantFrom('', ' ', '  a  b ', 'jane@example.com', 'GBP', 0, 84.5, 0.1 + 0.2, 1e21, -3, true, false, null),
  fc.string({ maxLength: 6 }),
  fc.integer(),
);

function eventArbitrary(spec: CompiledSpec, eventName: string) {
  const names = new Set<string>(['other']);
  for (const e of explainSpec(spec)) namesIn(jsonata(e.source).ast(), names);
  const keys = [...names];
  const { json } = fc.letrec<{ json: unknown; obj: Record<string, unknown> }>((tie) => ({
    json: fc.oneof({ depthSize: 'small' }, { arbitrary: scalar, weight: 4 }, { arbitrary: tie('obj'), weight: 1 }, { arbitrary: fc.array(tie('json'), { maxLength: 3 }), weight: 1 }),
    obj: fc.dictionary(fc.constantFrom(...keys), tie('json'), { maxKeys: 4 }),
  }));
  // Mostly an object of known names under `properties`; sometimes an array, a scalar or nothing there.
  // (an array of objects there is where JSONata's flattening, and so the full evaluator, takes over).
  const dict = fc.dictionary(fc.constantFrom(...keys), json, { maxKeys: 8 });
  const properties = fc.oneof({ arbitrary: dict, weight: 6 }, { arbitrary: fc.array(dict, { minLength: 1, maxLength: 2 }), weight: 2 }, { arbitrary: json, weight: 1 });
  return fc.record({
    top: fc.dictionary(fc.constantFrom(...keys), json, { maxKeys: 3 }),
    properties: fc.option(properties, { nil: undefined }),
    config: fc.dictionary(fc.constantFrom(...keys), json, { maxKeys: 4 }),
  }).map(({ top, properties, config }) => ({
    event: { ...top, type: 'track', event: eventName, event_id: 'evt_1', ...(properties === undefined ? {} : { properties }) } as unknown as SignalEvent,
    config,
  }));
}

type Outcome = { ok: true; body: unknown; fields: unknown } | { ok: false; error: string };
async function settle(fn: () => unknown): Promise<Outcome> {
  try {
    const r = (await fn()) as { body: unknown; fields: unknown };
    return { ok: true, body: r.body, fields: r.fields };
  } catch (e) {
    return { ok: false, error: `${(e as Error).name}: ${(e as Error).message}` };
  }
}

describe('the fused body builder gives what the mappings give one after the other', () => {
  const cases = [...specs.values()].flatMap((spec) => [...spec.presets.values()].flatMap((p) => [...p.events.keys(), 'Not In The Preset'].map((ev) => ({ spec, preset: p, ev }))));

  it(`agrees on random events for ${cases.length} preset events (keys, order, values, fields, errors)`, async () => {
    let fusedRuns = 0;
    // Without overrides the checks run inside the fused function; with them, after the overrides.
    const overrides = [
      { path: ['ContactKey'], expr: compileExpression('properties.other') },
      { path: ['Data', 'email'], expr: undefined },
      { path: ['extra', 'x'], expr: compileExpression('$string(properties.a)') },
    ];
    for (const [{ spec, preset, ev }, withOverrides] of cases.flatMap((c) => [[c, false], [c, true]] as const)) {
      const checked = { presetEvents: preset, overrides: withOverrides ? overrides : [] };
      const build = bodyBuilder(spec.send, checked);
      if (fuseBody(preset.events.get(ev), spec.send.request.body)) fusedRuns++;
      await fc.assert(
        fc.asyncProperty(eventArbitrary(spec, ev), async ({ event, config }) => {
          const expected = await settle(() => buildEventBody(spec.send, checked, structuredClone(event), structuredClone(config)));
          const got = await settle(() => build(structuredClone(event), structuredClone(config)));
          expect(got.ok).toBe(expected.ok);
          if (!got.ok || !expected.ok) {
            expect(got).toEqual(expected);
            return;
          }
          expect(JSON.stringify(got.body)).toBe(JSON.stringify(expected.body)); // key order too
          expect(isDeepStrictEqual(got.body, expected.body)).toBe(true);
          expect(isDeepStrictEqual(got.fields, expected.fields)).toBe(true);
        }),
        { numRuns: 60, seed: 20261128 },
      );
    }
    // The shipped specs are all fusable: this test exercised the generated code, not only the reference.
    expect(fusedRuns).toBeGreaterThanOrEqual(cases.length - 3);
  });
});

const SPEC = (body: string, fields = 'a: properties.a') => `
spec_version: 1
vendor: fuse_test
title: Fuse test
version: 1.0.0
description: A made-up vendor to pin the fused builder's edge cases.
config:
  type: object
  properties:
    key: { type: string, description: A key. }
allowed_hosts: [api.example.com]
presets:
  p:
    title: P
    default: true
    events:
      E:
        fields:
${fields
  .split('\n')
  .map((l) => `          ${l}`)
  .join('\n')}
send:
  request:
    method: POST
    url: https://api.example.com/x
    body:
${body
  .split('\n')
  .map((l) => `      ${l}`)
  .join('\n')}
  success:
    status: [200]
`;

async function compileOne(body: string, fields?: string): Promise<CompiledSpec> {
  const { spec, diagnostics } = checkSpecText('fuse_test.yaml', SPEC(body, fields));
  if (!spec) throw new Error(diagnostics.map((d) => d.message).join('\n'));
  return spec;
}

describe('fusing: the shapes it models, refuses and hands back', () => {
  it('spreads the fields key by key: a field named like an earlier body key keeps that key’s place', async () => {
    const spec = await compileOne('Data:\n  email: properties.email\n  "...": $fields\n  tail: "\'t\'"', 'email: properties.other\na: properties.a\nnested:\n  x: properties.a');
    const mapping = spec.presets.get('p')!.events.get('E')!;
    const fused = fuseBody(mapping, spec.send.request.body)!;
    expect(fused).toBeTypeOf('function');
    const event = { type: 'track', event: 'E', event_id: 'e', properties: { email: 'e@x', other: 'o@x', a: 1 } } as unknown as SignalEvent;
    const r = fused(event, {});
    expect(r).not.toBe(FUSE_BAIL);
    expect(JSON.stringify((r as { body: unknown }).body)).toBe('{"Data":{"email":"o@x","a":1,"nested":{"x":1},"tail":"t"}}');
    const ref = (await buildEventBody(spec.send, { presetEvents: spec.presets.get('p'), overrides: [] }, event, {})) as { body: unknown };
    expect(JSON.stringify(ref.body)).toBe(JSON.stringify((r as { body: unknown }).body));
  });

  it('hands an array on the way to the full evaluator, as JSONata’s flattening needs', async () => {
    const spec = await compileOne('v: properties.a');
    const fused = fuseBody(spec.presets.get('p')!.events.get('E'), spec.send.request.body)!;
    const r = fused({ type: 'track', event: 'E', event_id: 'e', properties: [{ a: 1 }, { a: 2 }] } as unknown as SignalEvent, {});
    expect(JSON.stringify((r as { body: unknown }).body)).toBe('{"v":[1,2]}');
  });

  it('reads own properties only, as JSONata: inherited, null-prototype and polluted-prototype objects', async () => {
    const spec = await compileOne('Data:\n  email: properties.email\n  a: properties.a\n  "...": $fields');
    const preset = spec.presets.get('p')!;
    const build = bodyBuilder(spec.send, { presetEvents: preset, overrides: [] });
    const reference = (e: SignalEvent) => buildEventBody(spec.send, { presetEvents: preset, overrides: [] }, e, {}) as { body: unknown };
    const inherited = Object.assign(Object.create({ email: 'inherited@x' }) as object, { a: 1 });
    const nullProto = Object.assign(Object.create(null) as object, { email: 'n@x', a: 2 });
    for (const properties of [inherited, nullProto, { a: 3 }]) {
      const event = { type: 'track', event: 'E', event_id: 'e', properties } as unknown as SignalEvent;
      expect(JSON.stringify((build(event, {}) as { body: unknown }).body)).toBe(JSON.stringify(reference(event).body));
    }
    expect(JSON.stringify((build({ type: 'track', event: 'E', event_id: 'e', properties: inherited } as unknown as SignalEvent, {}) as { body: unknown }).body)).toBe('{"Data":{"a":1}}');
    const proto = Object.prototype as Record<string, unknown>;
    proto.email = 'polluted@x';
    try {
      const event = { type: 'track', event: 'E', event_id: 'e', properties: { a: 4 } } as unknown as SignalEvent;
      expect(JSON.stringify((build(event, {}) as { body: unknown }).body)).toBe('{"Data":{"a":4}}');
    } finally {
      delete proto.email;
    }
  });

  it('answers FUSE_BAIL when a leaf needs the interpreter at run time, and the builder still gives the reference body', async () => {
    // `+` on a string is an error in JSONata: the compiled code hands the evaluation to the interpreter (a Promise).
    const spec = await compileOne('v: properties.a + 1');
    const mapping = spec.presets.get('p')!.events.get('E');
    const fused = fuseBody(mapping, spec.send.request.body)!;
    const event = { type: 'track', event: 'E', event_id: 'e', properties: { a: 'x' } } as unknown as SignalEvent;
    expect(fused(event, {})).toBe(FUSE_BAIL);
    const build = bodyBuilder(spec.send, { presetEvents: spec.presets.get('p'), overrides: [] });
    await expect(Promise.resolve().then(() => build(event, {}))).rejects.toThrow(/T2001|arithmetic|number/i);
    expect(await build({ ...event, properties: { a: 2 } } as unknown as SignalEvent, {})).toMatchObject({ body: { v: 3 } });
  });

  it('leaves interpreter-only expressions to the general path (not fused)', async () => {
    const spec = await compileOne('v: "$match(properties.a, /x/).match"');
    expect(fuseBody(spec.presets.get('p')!.events.get('E'), spec.send.request.body)).toBeUndefined();
    const build = bodyBuilder(spec.send, { presetEvents: spec.presets.get('p'), overrides: [] });
    expect(await build({ type: 'track', event: 'E', event_id: 'e', properties: { a: 'xyz' } } as unknown as SignalEvent, {})).toMatchObject({ body: { v: 'x' } });
  });
});
