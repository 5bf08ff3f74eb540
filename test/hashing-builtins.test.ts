/**
 * Issue 18 §1: the hashing and normalising built-ins. Digests are checked against node:crypto computed
 * here and against published test vectors (FIPS 180-2 "abc", RFC 4231, Meta's normalisation examples);
 * the compiled path must give the interpreter's answer on random inputs (differential, fast-check), and
 * the engine's evaluate gives JSONata-style errors for wrong argument types and values.
 */
import { createHash, createHmac } from 'node:crypto';
import fc from 'fast-check';
import jsonata from 'jsonata';
import { describe, expect, it } from 'vitest';
import { DEFAULT_FUNCTIONS, JSONATA_SIGNATURES } from '../engine/compile/builtins.js';
import { compileExpression, ExpressionEvalError, type AstNode } from '../engine/compile/expression.js';
import { BAIL, compileSubset } from '../engine/compile/fast/compiler.js';
import { sameResult } from './helpers/jsonata-suite.js';

const sha = (s: string, enc: 'hex' | 'base64' = 'hex') => createHash('sha256').update(s, 'utf8').digest(enc);
const hmac = (k: string, m: string, enc: 'hex' | 'base64' = 'hex') => createHmac('sha256', k).update(m, 'utf8').digest(enc);

/** The engine's evaluation, awaited whichever path answered; and which path that was. */
async function run(src: string, input: unknown, bindings: Record<string, unknown> = {}): Promise<unknown> {
  return compileExpression(src).evaluate(input, bindings);
}

describe('digests', () => {
  it('match published test vectors', async () => {
    // FIPS 180-2 appendix B.1, and the empty string.
    expect(await run('$sha256("abc")', {})).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(await run('$sha256("")', {})).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(await run('s.$sha256()', { s: 'abc' })).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'); // the context, in a path
    // RFC 4231 test case 2.
    expect(await run('$hmacSha256("Jefe", "what do ya want for nothing?")', {})).toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
    // Meta Conversions API, customer information parameters: em and ph examples (normalised, then hashed).
    expect(await run('$sha256($normalizeEmail(e))', { e: 'John_Smith@gmail.com' })).toBe('62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f');
    expect(await run('$sha256($normalizePhone(p, "1"))', { p: '(650)555-1212' })).toBe('e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176');
  });

  it('match node:crypto on odd strings, in hex and base64, compiled', async () => {
    const e = compileExpression('[$sha256(s), $sha256(s, "base64"), $hmacSha256(k, s), $hmacSha256(k, s, "base64")]');
    expect(e.path.kind).toBe('compiled');
    for (const s of ['', ' ', 'é', '😀 emoji', 'a\u0000b', 'x'.repeat(10_000), '\ud800 lone']) {
      const r = e.evaluate({ s, k: 'secret' }, {});
      expect(r).not.toBeInstanceOf(Promise);
      expect(r).toEqual([sha(s), sha(s, 'base64'), hmac('secret', s), hmac('secret', s, 'base64')]);
    }
  });
});

describe('undefined in, undefined out; wrong arguments are JSONata-style errors', () => {
  it.each(['$sha256(missing)', '$sha256(missing, "base64")', '$hmacSha256("k", missing)', '$hmacSha256(missing, "m")', '$sha256Once(missing)', '$normalizeEmail(missing)', '$normalizePhone(missing, "44")'])(
    '%s is undefined',
    async (src) => {
      expect(compileExpression(src).path.kind).toBe('compiled');
      expect(await run(src, {})).toBeUndefined();
    },
  );

  it.each([
    ['$sha256(n)', { n: 3 }, 'T0410'],
    ['$sha256(a)', { a: ['x', 'y'] }, 'T0410'],
    ['$sha256(s, n)', { s: 'x', n: 1 }, 'T0410'],
    ['$hmacSha256(n, s)', { s: 'x', n: 1 }, 'T0410'],
    ['$normalizeEmail(o)', { o: { a: 1 } }, 'T0410'],
    ['$sha256(s, e)', { s: 'x', e: 'hexa' }, 'SI3001'],
    ['$hmacSha256(s, s, e)', { s: 'x', e: 'base32' }, 'SI3001'],
    ['$normalizePhone(s, e)', { s: '0770', e: 'UK' }, 'SI3003'],
    ['$normalizePhone(s, "44", e)', { s: '0770', e: 'national' }, 'SI3002'],
  ])('%s with %j raises %s (through the interpreter, as JSONata would)', async (src, input, code) => {
    const r = compileExpression(src).evaluate(input, {});
    expect(r).toBeInstanceOf(Promise); // the compiled closure handed over
    await expect(r).rejects.toBeInstanceOf(ExpressionEvalError);
    await expect(r).rejects.toMatchObject({ jsonataCode: code });
  });

  it('a binding of the same name shadows the built-in, as in JSONata', async () => {
    expect(await run('$sha256(s)', { s: 'abc' }, { sha256: 'not a function' }).catch((e: ExpressionEvalError) => e.jsonataCode)).toBe('T1006');
  });
});

describe('normalisers', () => {
  it.each([
    ['  Jane.Doe@Example.COM\t', 'jane.doe@example.com'],
    ['jane+tag@gmail.com', 'jane+tag@gmail.com'], // no vendor-specific rewriting
    ['   ', undefined],
    ['', undefined],
  ])('$normalizeEmail(%j) is %j', async (email, expected) => {
    expect(await run('$normalizeEmail(e)', { e: email })).toBe(expected);
  });

  it.each([
    ['07700 900123', '44', undefined, '447700900123'],
    ['07700 900123', '+44', 'e164', '+447700900123'],
    ['+44 (0)7700-900123', '1', undefined, '4407700900123'], // international form keeps its own code; "(0)" is a digit written
    ['0044 7700 900123', undefined, undefined, '447700900123'],
    ['(650) 555-1212', 1, undefined, '16505551212'],
    ['16505551212', undefined, 'e164', '+16505551212'], // no default: taken to include its country code
    ['tel: 650.555.1212 ext', '1', undefined, '16505551212'],
    ['n/a', '44', undefined, undefined],
    ['123', '44', undefined, undefined],
    ['+1234567890123456', undefined, undefined, undefined], // more than 15 digits
    ['033134B911B137918338415EE3D20A064B24773D36A3B02E8B99FDD3FCD6B4CD', '44', undefined, '033134b911b137918338415ee3d20a064b24773d36a3b02e8b99fdd3fcd6b4cd'],
  ])('$normalizePhone(%j, %j, %j) is %j', async (phone, code, format, expected) => {
    const src = format === undefined ? '$normalizePhone(p, c)' : `$normalizePhone(p, c, "${format}")`;
    expect(await run(src, { p: phone, c: code })).toBe(expected);
  });

  it('$sha256Once passes a digest through (lower-cased) and hashes anything else', async () => {
    const d = sha('jane.doe@example.com');
    expect(await run('$sha256Once(s)', { s: d.toUpperCase() })).toBe(d);
    expect(await run('$sha256Once(s)', { s: 'jane.doe@example.com' })).toBe(d);
    expect(await run('$sha256Once(s)', { s: d.slice(1) })).toBe(sha(d.slice(1))); // 63 characters: not a digest
  });
});

/** An interpreter with the engine's functions, as the engine registers them. */
function interpreter(src: string): jsonata.Expression {
  const e = jsonata(src);
  for (const f of DEFAULT_FUNCTIONS.registered) e.registerFunction(f.name, f.implementation, f.signature);
  return e;
}

describe('differential: the compiled path gives the interpreter’s answer', () => {
  const EXPRESSIONS = [
    '$sha256(a)',
    '$sha256(a, b)',
    'a.$sha256($)',
    '$hmacSha256(a, b)',
    '$hmacSha256(a, b, c)',
    '$sha256Once(a)',
    '$normalizeEmail(a)',
    '$normalizePhone(a)',
    '$normalizePhone(a, b)',
    '$normalizePhone(a, b, c)',
    '$sha256Once($normalizePhone(a, b))',
    '$normalizeEmail(a) ? [$sha256Once($normalizeEmail(a))]',
    'a.{ "h": $sha256(b) }',
  ];
  const value = fc.oneof(
    fc.constantFrom('hex', 'base64', 'digits', 'e164', '44', '+1', '0044', 'HEX', ' Jane@X.com ', '07700 900123', '+44 7700 900123', '', ' ', sha('x'), sha('x').toUpperCase()),
    fc.string({ maxLength: 12 }),
    fc.string({ unit: 'binary', maxLength: 6 }),
    fc.integer({ min: -5, max: 1000 }),
    fc.constantFrom(null, true, 0.5),
    fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }),
    fc.constant(undefined),
  );
  const input = fc.record({ a: value, b: value, c: value }, { requiredKeys: [] });

  it.each(EXPRESSIONS)('%s', async (src) => {
    const ast = jsonata(src).ast() as unknown as AstNode;
    const compiled = compileSubset(ast);
    if (!('fn' in compiled)) throw new Error(`${src} is not compiled: ${compiled.reason}`);
    const interp = interpreter(src);
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(input, async (data) => {
        let got: unknown;
        try {
          got = compiled.fn(structuredClone(data), {});
        } catch (e) {
          if (e === BAIL) return; // the interpreter answers
          throw e;
        }
        answered++;
        let expected: unknown;
        try {
          expected = await interp.evaluate(structuredClone(data));
        } catch (e) {
          throw new Error(`${src} on ${JSON.stringify(data)}: jsonata raised ${(e as { code?: string }).code}, compiled answered ${JSON.stringify(got)}`);
        }
        if (!sameResult(got, expected)) throw new Error(`${src} on ${JSON.stringify(data)}: compiled ${JSON.stringify(got)} vs jsonata ${JSON.stringify(expected)}`);
      }),
      { numRuns: 400 },
    );
    expect(answered).toBeGreaterThan(10); // the rest bailed: wrong kinds, which the interpreter refuses
  });
});

describe('the signature table', () => {
  it('is JSONata’s own, function by function', async () => {
    for (const [name, signature] of Object.entries(JSONATA_SIGNATURES)) {
      const f = (await jsonata(`$${name}`).evaluate({})) as { signature?: { definition?: string } };
      expect(f.signature?.definition, name).toBe(signature);
    }
  });
});
