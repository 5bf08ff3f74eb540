/**
 * Issue 8.1: every regex a record or a spec supplies runs on a linear-time engine. A backtracking
 * pattern such as /(a+)+$/ used to block the event loop (preview never returned, $replace blocked ~9 s
 * and failed another event with a timeout); now it answers at once, and a pattern the linear engine
 * cannot run (backreference, lookahead) is refused at load with its position.
 */
import { readFileSync } from 'node:fs';
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { checkSpecText, Engine, RecordError } from '../engine/index.js';
import { LinearRegExp } from '../engine/compile/regex.js';
import { compileExpression, GUARDRAILS } from '../engine/compile/expression.js';
import { event, referenceRecord, withSetup, within, type Json } from './helpers/fixtures.js';

const HOSTILE = 'a'.repeat(36) + '!';
const FIXTURE = readFileSync(new URL('./fixtures/self-contained-spec.yaml', import.meta.url), 'utf8');

const hostileRecord = (expr: string, name = 'hostile'): Json => ({ ...referenceRecord(), name, field_mappings: { 'Data.x': expr } });
const hostileEvent = () => event({ properties: { ...event().properties, first_name: HOSTILE } });

describe('a backtracking regex in field_mappings', () => {
  it('preview with $match(/(a+)+$/) on 36 a and a ! finishes in under a second: no match, the field is left out', async () => {
    const engine = await Engine.load();
    try {
      const integration = engine.createIntegration(hostileRecord('$match(properties.first_name, /(a+)+$/)'));
      const requests = await within(1_000, integration.preview(hostileEvent()), 'preview');
      const send = requests.find((r) => r.stage === 'send')!;
      const body = JSON.parse(send.body!) as Json;
      expect(body.Data.first_name).toBe(HOSTILE);
      expect(body.Data).not.toHaveProperty('x');
    } finally {
      engine.close();
    }
  });

  it('$contains, $replace and $split answer at once, deliver, and a normal integration alongside is not held up', async () => {
    await withSetup({}, {}, async ({ engine, emu }) => {
      const normal = engine.createIntegration({ ...referenceRecord(), name: 'normal' });
      const cases: [string, unknown][] = [
        ['$contains(properties.first_name, /(a+)+$/)', false],
        ['$replace(properties.first_name, /(a+)+$/, "x")', HOSTILE],
        ['$count($split(properties.first_name, /(a+)+$/))', 1],
      ];
      for (const [expr, expected] of cases) {
        const hostile = engine.createIntegration(hostileRecord(expr));
        const [bad, good] = await within(5_000, Promise.all([hostile.deliver(hostileEvent()), normal.deliver(event())]), expr);
        expect(bad.status, expr).toBe('delivered');
        expect(good.status).toBe('delivered');
        const sent = emu.requests.filter((r) => r.path === '/interaction/v1/events' && (r.json as Json).Data.first_name === HOSTILE).at(-1)!.json as Json;
        expect(sent.Data.x, expr).toEqual(expected);
      }
    });
  });

  it('$eval of a string holding a regex literal runs on the same engine', async () => {
    const e = compileExpression('$eval("$match(s, /(a+)+$/)")');
    const started = Date.now();
    await expect(within(1_000, Promise.resolve(e.evaluate({ s: HOSTILE }, {})))).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it('a pattern the linear engine cannot run (backreference, lookahead) is refused when the record is checked, with its place', async () => {
    const engine = await Engine.load();
    try {
      for (const [expr, pos] of [
        ['$match(properties.first_name, /(a)\\1/)', 31],
        ['$contains(properties.first_name, /a(?=b)/)', 34],
      ] as const) {
        let err: unknown;
        try {
          engine.createIntegration(hostileRecord(expr));
        } catch (e) {
          err = e;
        }
        expect(err, expr).toBeInstanceOf(RecordError);
        const text = (err as RecordError).problems.join('\n');
        expect(text).toContain('field_mappings.Data.x');
        expect(text).toContain('not supported by the linear-time regex engine (RE2)');
        expect(text).toContain(`(at character ${pos})`);
      }
    } finally {
      engine.close();
    }
  });
});

describe('regexes in a spec', () => {
  it('a backtracking config pattern validates a hostile value at once (the value fails the pattern)', async () => {
    const spec = FIXTURE.replace('pattern: "^[^.]+$"', 'pattern: "^(a+)+$"');
    const { spec: compiled, diagnostics } = checkSpecText('/specs/hostile.yaml', spec);
    expect(diagnostics).toEqual([]);
    const started = Date.now();
    const ok = compiled!.validateConfig({ ...referenceRecord().config, event_definition_key: HOSTILE });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(ok).toBe(false);
    expect(compiled!.validateConfig.errors?.[0]?.message).toMatch(/must match pattern/);
    expect(compiled!.validateConfig({ ...referenceRecord().config, event_definition_key: 'aaaa' })).toBe(true);
  });

  it('a config pattern or a mapping regex the linear engine refuses is a load error at its line and column', () => {
    const spec = FIXTURE.replace('pattern: "^[^.]+$"', 'pattern: "^(a)\\\\1$"');
    const d = checkSpecText('/specs/hostile.yaml', spec).diagnostics;
    expect(d).toHaveLength(1);
    const line = spec.split('\n').findIndex((l) => l.includes('^(a)')) + 1;
    expect(d[0]).toMatchObject({ file: '/specs/hostile.yaml', line, path: 'config.properties.event_definition_key.pattern' });
    expect(d[0]!.message).toMatch(/not supported by the linear-time regex engine/);
  });
});

describe('the linear engine gives JavaScript’s answers on ordinary patterns', () => {
  const cases: [string, string][] = [
    ['$match("Crème brûlée", /[éû]/)', 'unicode letters'],
    ['$match("ÉCOLE école", /école/i)', 'case-insensitive non-ASCII'],
    ['$match("one\\ntwo\\nthree", /^t\\w+$/m)', 'multiline anchors'],
    ['$match("one\\ntwo", /^two$/)', 'no m: ^ and $ are the whole string'],
    ['$replace("a😀b😀c", /😀/, "-")', 'astral characters (UTF-16 indexes)'],
    ['$match("x😀y", /(y)/)', 'index after an astral character'],
    ['$split("a, b,c ,d", /\\s*,\\s*/)', 'split'],
    ['$replace("John Smith", /(\\w+)\\s(\\w+)/, "$2, $1")', 'replacement groups'],
    ['$match("ab12cd345", /\\d+/)', 'several matches'],
    ['$match("2024-05-01", /(?<y>\\d{4})-(\\d\\d)/)', 'named group'],
    ['$contains("Mary", /^ma/i)', 'contains'],
    ['$match("b", /(a)|(b)/)', 'unmatched group'],
    ['$replace("aaa", /a*?/, "x")', 'lazy quantifier (zero-length match is JSONata error D1004)'],
  ];
  for (const [expr, what] of cases) {
    it(what, async () => {
      const run = async (opts: object) => {
        try {
          return { value: JSON.parse(JSON.stringify((await jsonata(expr, opts).evaluate({})) ?? null)) as unknown };
        } catch (e) {
          return { code: (e as { code?: string }).code };
        }
      };
      const native = await run({});
      const linear = await run({ RegexEngine: LinearRegExp as unknown as RegExpConstructor });
      expect(linear).toEqual(native);
      // And through the engine's own compile path.
      const ours = await Promise.resolve(compileExpression(expr).evaluate({}, {})).then(
        (value) => ({ value: JSON.parse(JSON.stringify(value ?? null)) as unknown }),
        (e: { jsonataCode?: string }) => ({ code: e.jsonataCode }),
      );
      expect(ours).toEqual(native);
    });
  }

  it('one documented difference: `.` and classes match a whole astral character, not half of it', async () => {
    // JavaScript without the `u` flag matches one UTF-16 half of an emoji; RE2 matches the character.
    expect(await compileExpression('$match("x😀y", /(.)(y)/)').evaluate({}, {})).toMatchObject({ match: '😀y', index: 1, groups: ['😀', 'y'] });
  });
});

describe('documented guardrails (issue 8.17)', () => {
  it('docs/spec-language.md quotes the timeout, stack depth and sequence length the code uses', () => {
    const docs = readFileSync(new URL('../docs/spec-language.md', import.meta.url), 'utf8');
    const guardrails = /\*\*Guardrails\.\*\* JSONata evaluation runs with a \*\*([\d,]+) ms timeout\*\*, a \*\*stack depth of ([\d,]+)\*\* and a \*\*maximum\s+sequence length of ([\d,]+)\*\*/.exec(docs);
    expect(guardrails).not.toBeNull();
    const n = (s: string) => Number(s.replace(/,/g, ''));
    expect({ timeout: n(guardrails![1]!), stack: n(guardrails![2]!), sequence: n(guardrails![3]!) }).toEqual(GUARDRAILS);
  });
});
