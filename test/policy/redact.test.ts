import { describe, expect, it } from 'vitest';
import { REDACTED, base64Forms, redactAndCut, redactValue, redactor, secretForms } from '../../engine/policy/redact.js';

describe('redactor', () => {
  it.each<[string, (string | undefined | null)[], string, string]>([
    ['replaces every occurrence', ['s3cr3t'], 'a s3cr3t b s3cr3t', `a ${REDACTED} b ${REDACTED}`],
    ['handles several secrets', ['tok-123', 'pass-456'], 'tok-123:pass-456', `${REDACTED}:${REDACTED}`],
    ['longest first: a secret containing another is hidden whole', ['abcd', 'abcdefgh'], 'xabcdefghx', `x${REDACTED}x`],
    ['longest first regardless of input order', ['abcdefgh', 'abcd'], 'abcdefgh abcd', `${REDACTED} ${REDACTED}`],
    ['ignores values shorter than 4 chars', ['abc', 'x', ''], 'abc x', 'abc x'],
    ['exactly 4 chars is scrubbed', ['abcd'], 'abcd', REDACTED],
    ['ignores null and undefined', [null, undefined, 'key-9999'], 'key-9999', REDACTED],
    ['regex metacharacters are literal', ['a.b*c+(d)'], 'a.b*c+(d) aXbbc', `${REDACTED} aXbbc`],
    ['dollar patterns stay literal', ['$&$1x'], 'p=$&$1x', `p=${REDACTED}`],
    ['never re-scans the marker', ['dact', 'secret-value'], 'secret-value', REDACTED],
    ['no secrets: identity', [], 'anything', 'anything'],
  ])('%s', (_name, secrets, input, expected) => {
    expect(redactor(secrets)(input)).toBe(expected);
  });

  it('accepts any iterable, including a generator', () => {
    function* gen() {
      yield 'token-abc';
    }
    expect(redactor(gen())('Bearer token-abc')).toBe(`Bearer ${REDACTED}`);
  });
});

describe('redactValue', () => {
  const r = redactor(['hunter22']);

  it('redacts string values deeply and leaves keys and other primitives alone', () => {
    const input = {
      hunter22: 'pw=hunter22',
      n: 1,
      b: true,
      nil: null,
      list: ['hunter22', 2, { deep: 'x hunter22 y' }],
    };
    expect(redactValue(input, r)).toEqual({
      hunter22: `pw=${REDACTED}`,
      n: 1,
      b: true,
      nil: null,
      list: [REDACTED, 2, { deep: `x ${REDACTED} y` }],
    });
  });

  it('does not mutate the input', () => {
    const input = { a: ['hunter22'] };
    const out = redactValue(input, r) as { a: string[] };
    expect(input.a[0]).toBe('hunter22');
    expect(out.a).not.toBe(input.a);
  });

  it('redacts a bare string and passes through undefined', () => {
    expect(redactValue('hunter22', r)).toBe(REDACTED);
    expect(redactValue(undefined, r)).toBeUndefined();
  });

  it('survives cycles', () => {
    const input: Record<string, unknown> = { s: 'hunter22' };
    input['self'] = input;
    const out = redactValue(input, r) as Record<string, unknown>;
    expect(out['s']).toBe(REDACTED);
    expect(out['self']).toBe(out);
  });

  it('keeps an own __proto__ key as data', () => {
    const input = JSON.parse('{"__proto__": {"x": "hunter22"}}') as unknown;
    const out = redactValue(input, r) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({ x: REDACTED });
  });
});

describe('secret forms', () => {
  const secret = 'p@ss w/rd+secret';

  it('URL-, form- and JSON-encoded forms are redacted too', () => {
    const r = redactor([secret, 'quote"back\\slash']);
    expect(r(`a=${encodeURIComponent(secret)}&b=${new URLSearchParams({ s: secret }).toString().slice(2)}`)).toBe(`a=${REDACTED}&b=${REDACTED}`);
    expect(r(`c=${encodeURIComponent(secret).toLowerCase()}`)).toBe(`c=${REDACTED}`);
    expect(r(JSON.stringify({ v: 'quote"back\\slash' }))).toBe(`{"v":"${REDACTED}"}`);
    expect(secretForms('plain-value')).toEqual(['plain-value', 'cGxhaW4tdmFs', 'bGFpbi12YWx1', 'YWluLXZhbHVl']);
  });

  it('base64 of a longer value holding the secret at any offset is redacted, leaving no 3 bytes of it', () => {
    const r = redactor([secret]);
    for (const prefix of ['', 'u', 'us', 'use', 'user:', 'client-id:']) {
      const encoded = Buffer.from(`${prefix}${secret}:tail`).toString('base64');
      const out = r(`Basic ${encoded}`);
      expect(out, prefix).toContain(REDACTED);
      const left = out.slice('Basic '.length).split(REDACTED).map((p) => Buffer.from(p, 'base64').toString('latin1')).join('|');
      for (let i = 0; i + 3 <= secret.length; i++) expect(left, `${prefix}: ${secret.slice(i, i + 3)}`).not.toContain(secret.slice(i, i + 3));
    }
  });

  it('base64Forms: one run per alignment, standard and url-safe, none shorter than 4 characters', () => {
    expect(base64Forms('abcd')).toEqual(['YWJj', 'YmNk']);
    expect(base64Forms('ab?>ab?>')).toContain('YWI_PmFi');
  });

  it('redactAndCut redacts first: a secret across the cut leaves no prefix', () => {
    const text = `${'x'.repeat(495)}s3cr3t-token-value`;
    expect(text.slice(0, 500)).toContain('s3cr3'); // what cutting first used to leave
    expect(redactAndCut(text, redactor(['s3cr3t-token-value']), 500)).toBe(`${'x'.repeat(495)}[reda…`);
    expect(redactAndCut('short', redactor([]), 500)).toBe('short');
  });
});
