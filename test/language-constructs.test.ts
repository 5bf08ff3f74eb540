/**
 * The pure rules behind issue 7's constructs, and their load-time diagnostics: origin placeholders,
 * `**.` host patterns, named retry-delay headers, and the checks on public outputs, chain reauth and URLs.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { renderOrigin, renderTemplate, parseTemplate } from '../engine/compile/template.js';
import { checkSpecText, formatDiagnostic } from '../engine/index.js';
import { hostAllowed } from '../engine/policy/hosts.js';
import { parseNamedRetryHeader } from '../engine/policy/retry-delay.js';

describe('origin placeholders', () => {
  it.each([
    ['https://eu1.api.acme.example', 'https://eu1.api.acme.example'],
    ['https://eu1.api.acme.example/', 'https://eu1.api.acme.example'],
    ['https://EU1.api.acme.example:8443', 'https://eu1.api.acme.example:8443'],
    ['http://127.0.0.1:9000', 'http://127.0.0.1:9000'],
  ])('%s is an origin', (value, origin) => {
    expect(renderOrigin(value, 'x')).toBe(origin);
  });

  it.each([
    'https://user:pw@api.acme.example',
    'https://api.acme.example/path',
    'https://api.acme.example?x=1',
    'https://api.acme.example#f',
    'ftp://api.acme.example',
    'api.acme.example',
    'https://evil.example\\@api.acme.example',
    'https://api.acme.example /x',
    '',
  ])('%j is refused', (value) => {
    expect(() => renderOrigin(value, 'x')).toThrow(/must be an origin|has no value/);
  });

  it('is refused when not a string, and only the first placeholder of an origin template is inserted as is', () => {
    expect(() => renderOrigin(42, 'x')).toThrow(/must be a string/);
    const parts = parseTemplate('{a}/v1/{b}');
    expect(renderTemplate(parts, ['https://h.example', 'x/y'], 'url', 'check')).toBe('https://h.example/v1/x%2Fy');
    expect(renderTemplate(parts, ['[a.b]', 'x'], 'url', 'as-is')).toBe('[a.b]/v1/x');
    expect(() => renderTemplate(parts, ['https://h.example/path', 'x'], 'url', 'as-is')).toThrow(/must be an origin/);
  });
});

describe('**. host patterns', () => {
  it('match one or more extra labels, never the suffix itself; *. stays one label', () => {
    expect(hostAllowed('api.eu.iterable.com', ['**.iterable.com'])).toBe(true);
    expect(hostAllowed('api.iterable.com', ['**.iterable.com'])).toBe(true);
    expect(hostAllowed('iterable.com', ['**.iterable.com'])).toBe(false);
    expect(hostAllowed('evil-iterable.com', ['**.iterable.com'])).toBe(false);
    expect(hostAllowed('a..iterable.com', ['**.iterable.com'])).toBe(false);
    expect(hostAllowed('api.eu.iterable.com', ['*.iterable.com'])).toBe(false);
    expect(hostAllowed('x.example.com', ['**.'])).toBe(false);
    expect(hostAllowed('x.example.com', ['***.example.com'])).toBe(false);
  });
});

describe('named retry-delay headers', () => {
  const now = 1_800_000_000_000;
  it('read seconds, or an epoch (seconds) relative to now; a past reset is no wait', () => {
    expect(parseNamedRetryHeader('3', 'seconds', now)).toBe(3000);
    expect(parseNamedRetryHeader(String(now / 1000 + 30), 'epoch', now)).toBe(30_000);
    expect(parseNamedRetryHeader(String(now / 1000 - 30), 'epoch', now)).toBe(0);
    expect(parseNamedRetryHeader(['2', '9'], 'seconds', now)).toBe(2000);
  });
  it('ignore what is not a number', () => {
    expect(parseNamedRetryHeader(undefined, 'seconds', now)).toBeUndefined();
    expect(parseNamedRetryHeader('soon', 'epoch', now)).toBeUndefined();
    expect(parseNamedRetryHeader('-5', 'seconds', now)).toBeUndefined();
  });
});

describe('load-time checks of the new constructs', async () => {
  const fixture = await readFile(new URL('./fixtures/chained-tokens-spec.yaml', import.meta.url), 'utf8');
  const check = (text: string) => checkSpecText('acme.yaml', text).diagnostics.map(formatDiagnostic);

  it('the fixture is clean', () => {
    expect(check(fixture)).toEqual([]);
  });

  it('each mistake is reported at its place', () => {
    const bad = fixture
      .replace("url: '{$auth.access.instance_url}/v1/events?account={$auth.access.account}'", "url: '{$auth.access.instance_url}.evil.example/v1'")
      .replace('url: https://login.acme.example/oauth/session', 'url: login.acme.example/oauth/session')
      .replace('public: [instance_url, account]', 'public: [instance_uri, account]')
      .replace('    result: { session_token: session_token }\n', '    result: { session_token: session_token }\n    errors:\n      - when: { status: 401 }\n        action: reauth\n');
    const lines = check(bad);
    expect(lines).toEqual([
      expect.stringMatching(/^acme\.yaml:\d+:\d+: the URL has no scheme: write https:\/\/login\.acme\.example\/oauth\/session .* \(at auth\[0\]\.request\.url\)$/),
      expect.stringMatching(/^acme\.yaml:\d+:\d+: reauth is for requests made with a token: .*the first stage has none \(at auth\[0\]\.errors\[0\]\.action\)$/),
      expect.stringMatching(/^acme\.yaml:\d+:\d+: public names 'instance_uri', which is not an output in result \(at auth\[1\]\.public\[0\]\)$/),
      expect.stringMatching(/^acme\.yaml:\d+:\d+: the origin comes from \$auth\.access\.instance_url, a secret output: .* \(at send\.request\.url\)$/),
      expect.stringMatching(/^acme\.yaml:\d+:\d+: an origin placeholder at the start of a URL must be followed by the path .* \(at send\.request\.url\)$/),
    ]);
  });

  it('an origin from a secret auth output is refused: it would be written into URLs', () => {
    expect(check(fixture.replace('public: [instance_url, account]', 'public: [account]'))).toEqual([
      expect.stringMatching(/the origin comes from \$auth\.access\.instance_url, a secret output: list 'instance_url' in that stage's public outputs \(at send\.request\.url\)$/),
    ]);
  });

  it('$group exists only where a batch groups; $headers only in vendor_error', () => {
    const withGroup = fixture.replace('      id: event_id\n', '      id: event_id\n      g: $group\n');
    expect(check(withGroup)).toEqual([expect.stringMatching(/unknown variable \$group .*\(at send\.request\.body\.g\)$/)]);
    const headersInBody = fixture.replace('      id: event_id\n', '      id: event_id\n      h: $headers\n');
    expect(check(headersInBody)).toEqual([expect.stringMatching(/unknown variable \$headers .*\(at send\.request\.body\.h\)$/)]);
  });
});
