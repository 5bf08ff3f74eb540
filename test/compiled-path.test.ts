/**
 * The compiled JSONata subset as the engine uses it: bodies are built synchronously and as plain
 * objects, prototype keys cannot be mapped, evaluations where JSONata raises an error still raise
 * JSONata's error (through the interpreter), and `validate --explain` says which path each expression takes.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { Engine, checkSpecText } from '../engine/index.js';
import { compileExpression, ExpressionEvalError } from '../engine/compile/expression.js';
import { plainPathAst } from '../engine/compile/fast/compiler.js';
import { evaluateMapping, type CompiledMapping } from '../engine/compile/mapping.js';
import { explainSpec, formatExplanation } from '../engine/compile/explain.js';
import { bodyBuilder, buildEventBody } from '../engine/run/body.js';
import { checkRecord } from '../engine/validate/record.js';
import { DeliveryError } from '../engine/errors.js';
import type { SignalEvent } from '../engine/run/event.js';

const FIXTURE = new URL('./fixtures/self-contained-spec.yaml', import.meta.url);
const record = {
  source_id: 'src_1',
  vendor: 'salesforce_marketing_cloud',
  name: 'compiled path',
  enabled: true,
  config: { tenant_subdomain: 'mc-test', client_id: 'id', client_secret: 'secret', event_definition_key: 'key' },
};
const order: SignalEvent = {
  type: 'track' as const,
  event: 'Order Completed',
  event_id: 'evt_1',
  user_id: 'u1',
  properties: { email: 'a@example.com', order_id: 'O1', revenue: 12.5, currency: 'GBP', products: [{ sku: 'S', price: 0.1 + 0.2 }, { sku: 'T', price: 3 }] },
};

describe('the compiled path in the engine', () => {
  it('builds a shipped spec’s body, checks included, in one synchronous call, as plain objects', async () => {
    const engine = await Engine.load();
    try {
      const spec = engine.specs.get('salesforce_marketing_cloud')!;
      const checked = checkRecord(record, engine.specs);
      // Both the reference (mapping by mapping) and deliver's builder (fused into one generated function).
      const build = bodyBuilder(spec.send, checked);
      const reference = buildEventBody(spec.send, checked, order, checked.record.config as Record<string, unknown>);
      expect(reference).not.toBeInstanceOf(Promise);
      const built = build(order, checked.record.config as Record<string, unknown>);
      expect(built).not.toBeInstanceOf(Promise);
      expect(JSON.stringify((built as { body: unknown }).body)).toBe(JSON.stringify((reference as { body: unknown }).body));
      const { body } = built as { body: Record<string, Record<string, unknown>> };
      expect(Object.getPrototypeOf(body)).toBe(Object.prototype);
      expect(Object.getPrototypeOf(body.Data)).toBe(Object.prototype);
      // JSONata's own number formatting inside $string (0.1 + 0.2 prints with 15 significant digits).
      expect(JSON.stringify(body)).toBe(
        '{"ContactKey":"a@example.com","EventDefinitionKey":"key","Data":{"email":"a@example.com","order_id":"O1","order_value":12.5,"currency":"GBP","item_count":2,' +
          '"products":"[{\\"sku\\":\\"S\\",\\"price\\":0.3},{\\"sku\\":\\"T\\",\\"price\\":3}]","user_id":"u1"}}',
      );
      // A failed check throws synchronously: nothing was deferred to a promise.
      expect(() => buildEventBody(spec.send, checked, { ...order, properties: { email: '  ' } }, checked.record.config as Record<string, unknown>)).toThrow(DeliveryError);
      expect(() => build({ ...order, properties: { email: '  ' } }, checked.record.config as Record<string, unknown>)).toThrow(DeliveryError);
    } finally {
      engine.close();
    }
  });

  it('gives JSONata’s own error where JSONata raises one (the compiled closure hands over to the interpreter)', async () => {
    const e = compileExpression('properties.value + "x"');
    expect(e.path.kind).toBe('compiled');
    const r = e.evaluate({ properties: { value: 1 } }, {});
    expect(r).toBeInstanceOf(Promise);
    await expect(r).rejects.toBeInstanceOf(ExpressionEvalError);
    await expect(r).rejects.toMatchObject({ jsonataCode: 'T2002' });
    expect(compileExpression('properties.value + 1').evaluate({ properties: { value: 1 } }, {})).toBe(2);
  });

  it('reads own properties only, as JSONata does, whatever the prototype (inherited, null, polluted Object.prototype)', async () => {
    const { default: jsonata } = await import('jsonata');
    const sources = ['a.b', '$exists(a.b) ? a.b', 'a.(b)', '$config.b'];
    const inputs = () => [
      { a: Object.assign(Object.create({ b: 'inherited' }) as object, { c: 1 }) },
      { a: Object.assign(Object.create(null) as object, { b: 'own' }) },
      { a: { b: 'own' } },
      { a: { c: 1 } },
    ];
    const proto = Object.prototype as Record<string, unknown>;
    for (const polluted of [false, true]) {
      if (polluted) proto.b = 'polluted';
      try {
        for (const src of sources) {
          const compiled = compileExpression(src);
          const interpreter = jsonata(src);
          for (const input of inputs()) {
            const bindings = { config: input.a };
            const mapped = evaluateMapping({ kind: 'object', entries: [{ key: 'v', spread: false, node: { kind: 'expr', expr: compiled, path: 'v' } }] }, input, bindings);
            const expected = await interpreter.evaluate(input, bindings);
            expect(compiled.evaluate(input, bindings), `${src} (polluted: ${polluted})`).toEqual(expected);
            expect((mapped as { v?: unknown }).v, `${src} in a mapping (polluted: ${polluted})`).toEqual(expected);
          }
        }
      } finally {
        delete proto.b;
      }
    }
  });

  it('builds exactly the AST JSONata’s parser gives for a plain path, without running the parser', async () => {
    const { default: fc } = await import('fast-check');
    const { default: jsonata } = await import('jsonata');
    const ident = fc.oneof(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), fc.constantFrom('and', 'or', 'in', 'true', 'false', 'null', 'function', 'email', 'properties', '_', 'a1'));
    let built = 0;
    fc.assert(
      fc.property(fc.boolean(), fc.array(ident, { minLength: 1, maxLength: 4 }), (dollar, names) => {
        const source = `${dollar ? '$' : ''}${names.join('.')}`;
        const ast = plainPathAst(source);
        if (ast === undefined) return;
        built++;
        expect(ast).toEqual(jsonata(source).ast());
      }),
      { numRuns: 2_000, seed: 20261128 },
    );
    expect(built).toBeGreaterThan(500);
    for (const source of ['properties.email', '$config.event_definition_key', '$fields', 'user_id']) expect(plainPathAst(source)).toEqual(jsonata(source).ast());
    for (const source of ['$', '$$', 'a .b', '`a b`.c', 'a.and', 'a[0]', 'a.b()', '']) expect(plainPathAst(source)).toBeUndefined();
    // Compiled from the quick AST, the interpreter still answers where it must (parsed when first needed).
    const e = compileExpression('properties.value');
    expect(JSON.stringify(e.evaluate({ properties: [{ value: 1 }, { value: 2 }] }, {}))).toBe('[1,2]');
    // `$string` unbound is the builtin itself: only the interpreter (parsed now, on first need) gives JSONata's value for it.
    await expect(compileExpression('$string').evaluate({}, {})).resolves.toMatchObject({ _jsonata_function: true });
  });

  it('keeps a spread `__proto__` key from data as plain data, never as the body’s prototype', () => {
    const spread: CompiledMapping = { kind: 'object', entries: [{ key: '...', spread: true, node: { kind: 'expr', expr: compileExpression('$extra'), path: 'x' } }] };
    const extra = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    const out = evaluateMapping(spread, {}, { extra }) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect((out as { polluted?: unknown }).polluted).toBeUndefined();
    expect(JSON.stringify(out)).toBe('{"__proto__":{"polluted":true},"a":1}');
  });

  it('refuses a mapping key that names a prototype property when the spec is compiled', async () => {
    const text = (await readFile(FIXTURE, 'utf8')).replace('        phone: properties.phone\n', '        phone: properties.phone\n        constructor: properties.x\n');
    const r = checkSpecText('salesforce_marketing_cloud.yaml', text);
    expect(r.spec).toBeUndefined();
    expect(r.diagnostics.map((d) => d.message)).toContainEqual(expect.stringContaining("mapping key 'constructor' names a prototype property"));
  });

  it('explains which expressions run compiled and why the others run in the interpreter', async () => {
    const text = (await readFile(FIXTURE, 'utf8')).replace('        phone: properties.phone\n', '        phone: properties.phone\n        digits: $match(properties.phone, /[0-9]+/).match\n');
    const r = checkSpecText('salesforce_marketing_cloud.yaml', text);
    expect(r.diagnostics).toEqual([]);
    const list = explainSpec(r.spec!);
    expect(list.find((e) => e.where === 'send.request.body.Data.email')).toMatchObject({ evaluator: 'compiled', source: 'properties.email' });
    expect(list.find((e) => e.where === 'send.request.body.Data.digits')).toMatchObject({ evaluator: 'interpreter', reason: expect.stringContaining('match') });
    expect(list.find((e) => e.where === 'send.checks.0.that')?.evaluator).toBe('compiled');
    expect(formatExplanation('x', list)).toMatch(/^x: \d+ of \d+ expressions compiled, 1 run in the JSONata interpreter/);
  });
});
