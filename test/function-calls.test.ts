/**
 * Issue 18 §1: `validate` knows every function's arity and, for literal arguments, the kinds and values
 * it accepts (located errors, file:line:col); an unknown function gets "did you mean" and the list of
 * what exists; a library user adds functions with `Engine.load({ functions })`, used by the compiled path
 * and the interpreter alike and checked at load like the built-ins.
 */
import { describe, expect, it } from 'vitest';
import { checkSpecText, Engine, formatDiagnostic, SignalError, SpecError } from '../engine/index.js';
import { compileExpression } from '../engine/compile/expression.js';
import { functionSet } from '../engine/compile/builtins.js';
import { startStubVendor } from './helpers/stub-vendor.js';

/** A one-request spec whose body maps `out` to the expression (the body line is line 8). */
const spec = (expr: string) => `spec_version: 1
vendor: acme
title: Acme
version: 1.0.0
config: {type: object, properties: {country: {type: string}}}
allowed_hosts: [api.acme.example]
send:
  request:
    method: POST
    url: https://api.acme.example/events
    body:
      out: ${JSON.stringify(expr)}
`;
const check = (expr: string) => checkSpecText('acme.yaml', spec(expr)).diagnostics.map(formatDiagnostic);

describe('validate checks calls', () => {
  // The expression starts at column 13 (after `out: "`); each error points at its token.
  it.each([
    ['$uppercase(event, 3)', '$uppercase', '$uppercase takes 1 argument, not 2 (the first may be left out inside a path: it is then the context value)'],
    ['$sha256(event, 64)', '64', 'argument 2 of $sha256 is a number: it takes a string there (the call would always fail, T0410)'],
    ['$sha256(event, "hexa")', '"hexa"', `$sha256: the encoding must be 'hex' or 'base64', not "hexa"`],
    ['$hmacSha256("k")', '$hmacSha256', '$hmacSha256 takes 2 to 3 arguments, not 1'],
    ['$hmacSha256("k", event, true)', 'true', 'argument 3 of $hmacSha256 is a boolean: it takes a string there (the call would always fail, T0410)'],
    ['$normalizePhone(event, "UK")', '"UK"', `$normalizePhone: the default country calling code must be 1 to 3 digits (e.g. '44' or '+44'), not "UK"`],
    ['$normalizePhone(event, $config.country, "international")', '"international"', `$normalizePhone: the format must be 'digits' or 'e164', not "international"`],
    ['$string(event, 3)', '3', 'argument 2 of $string is a number: it takes a boolean there (the call would always fail, T0410)'],
    ['event ~> $substring(1, 2, 3)', '$substring', '$substring takes 2 to 3 arguments, not 4 (the first may be left out inside a path: it is then the context value)'],
    ['event ~> $millis', '$millis', '$millis takes 0 arguments, not 1'],
  ])('%s: a located error', (expr, token, message) => {
    // In the YAML the expression is double-quoted, so `"` inside it is written `\"`: count those too.
    const at = JSON.stringify(expr).indexOf(JSON.stringify(token).slice(1, -1));
    expect(check(expr)).toEqual([`acme.yaml:12:${12 + at}: ${message} (at send.request.body.out)`]);
  });

  it('an unknown function: did you mean, and what exists', () => {
    const [d] = check('$sha265(event)');
    expect(d).toMatch(/^acme\.yaml:12:13: unknown function \$sha265 — did you mean \$sha256\? \(available: the engine's \$hmacSha256, \$normalizeEmail, \$normalizePhone, \$sha256, \$sha256Once; JSONata's \$abs, .*\$uppercase, \$zip\)/);
  });

  it.each([
    '$sha256(event.email)',
    '$sha256(event.email, "base64")',
    'event.email.$sha256()',
    'event.email ~> $sha256',
    '$normalizePhone(event.phone, $config.country, "e164")',
    '$normalizePhone(event.phone, 44)',
    '$substring(?, 1)("abc")',
    '($f := function($x) { $x }; $f(1, 2, 3))',
    '$map([1, 2], function($v, $i) { $v + $i })',
    '$uppercase()',
  ])('%s passes', (expr) => {
    expect(check(expr)).toEqual([]);
  });

  it('in a record’s field_mappings too', async () => {
    const engine = await Engine.load({ specTexts: [{ file: 'acme.yaml', text: spec('event') }] });
    try {
      expect(() => engine.createIntegration({ source_id: 's', vendor: 'acme', name: 'n', enabled: true, config: {}, field_mappings: { out: '$lowercase(event, 1)' } })).toThrow(
        /field_mappings\.out: \$lowercase takes 1 argument, not 2/,
      );
    } finally {
      engine.close();
    }
  });
});

describe('Engine.load({ functions })', () => {
  const tier = { implementation: (points: unknown) => (typeof points === 'number' ? (points >= 100 ? 'gold' : 'silver') : undefined), arity: 1 };

  it('a library user’s function runs on the compiled path and in the interpreter with one answer', async () => {
    const set = functionSet({ tier });
    const fast = compileExpression('$tier(p)', set);
    expect(fast.path.kind).toBe('compiled');
    expect(fast.evaluate({ p: 150 }, {})).toBe('gold');
    // A regex keeps the whole expression in the interpreter, where the function is registered too.
    const slow = compileExpression('$tier(p) & $replace("x", /x/, "")', set);
    expect(slow.path.kind).toBe('interpreter');
    expect(await slow.evaluate({ p: 150 }, {})).toBe('gold');
    // Without it, the same source is not known: one cache per set of functions.
    expect(compileExpression('$tier(p)').path.kind).toBe('interpreter');
  });

  it('is used in delivery and known to validate’s checks', async () => {
    const stub = await startStubVendor();
    stub.answer('/events', { status: 200, body: {} });
    const engine = await Engine.load({ specTexts: [{ file: 'acme.yaml', text: spec('$tier(properties.points)') }], functions: { tier }, endpoint: stub.url });
    try {
      const i = engine.createIntegration({ source_id: 's', vendor: 'acme', name: 'n', enabled: true, config: {} });
      const o = await i.deliver({ type: 'track', event: 'X', event_id: 'e1', properties: { points: 120 } });
      expect(o.status).toBe('delivered');
      expect(JSON.parse(stub.requests[0]!.body)).toEqual({ out: 'gold' });
    } finally {
      engine.close();
      await stub.close();
    }
    const bad = Engine.load({ specTexts: [{ file: 'acme.yaml', text: spec('$tier(properties.points, 2)') }], functions: { tier } });
    await expect(bad).rejects.toBeInstanceOf(SpecError);
    await expect(bad).rejects.toThrow(/acme\.yaml:12:13: \$tier takes 1 argument, not 2/);
    // Without the function, the spec is refused as calling an unknown one.
    await expect(Engine.load({ specTexts: [{ file: 'acme.yaml', text: spec('$tier(properties.points)') }] })).rejects.toThrow(/unknown function \$tier/);
  });

  it.each([
    [{ sha256: tier }, /\$sha256 is already a built-in function/],
    [{ uppercase: tier }, /\$uppercase is already a JSONata function/],
    [{ config: tier }, /\$config is a variable the engine binds/],
    [{ '$tier': tier }, /'\$tier' is not a function name/],
    [{ tier: { implementation: 'x', arity: 1 } }, /\$tier: implementation must be a function/],
    [{ tier: { implementation: () => 1, arity: { min: 2, max: 1 } } }, /\$tier: arity must be/],
    [{ tier: { implementation: () => 1, arity: -1 } }, /\$tier: arity must be/],
  ])('a bad declaration is an options.functions error: %j', async (functions, message) => {
    const load = Engine.load({ specTexts: [{ file: 'acme.yaml', text: spec('event') }], functions: functions as never });
    await expect(load).rejects.toBeInstanceOf(SignalError);
    await expect(load).rejects.toMatchObject({ code: 'options.functions' });
    await expect(load).rejects.toThrow(message);
  });

  it('a function that returns a Promise is an evaluation error, on either path', async () => {
    const set = functionSet({ later: { implementation: async () => 'x', arity: 0 } });
    const e = compileExpression('$later()', set);
    const r = e.evaluate({}, {});
    expect(r).toBeInstanceOf(Promise);
    await expect(r).rejects.toMatchObject({ jsonataCode: 'SI3004', message: expect.stringMatching(/returned a Promise/) });
  });
});
