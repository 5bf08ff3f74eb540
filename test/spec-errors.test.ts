/**
 * Spec authors get every problem with its `file:line:col`: broken variants of a self-contained Marketing
 * Cloud spec (test/fixtures/self-contained-spec.yaml), checked as text and as files in a folder. Expected positions are computed from the text written,
 * and for expressions they point at the offending token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, SpecError, checkSpecText, checkSpecs, formatDiagnostic, type Diagnostic } from '../engine/index.js';

const FILE_NAME = 'salesforce_marketing_cloud.yaml';
/** A frozen, self-contained copy of the journey spec: the bundled one may move parts into partials. */
const FIXTURE = new URL('./fixtures/self-contained-spec.yaml', import.meta.url);
let original: string;
let tmp: string;

beforeAll(async () => {
  original = await readFile(FIXTURE, 'utf8');
  tmp = await mkdtemp(join(tmpdir(), 'spec-errors-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The bundled spec with `from` (which must occur exactly once) replaced by `to`. */
function variant(from: string, to: string, text = original): string {
  const first = text.indexOf(from);
  if (first < 0 || text.indexOf(from, first + 1) >= 0) throw new Error(`test setup: '${from}' must occur exactly once in the spec`);
  return text.slice(0, first) + to + text.slice(first + from.length);
}

/**
 * Where `token` sits on the one line of `text` that contains `lineMarker`: 1-based line, and 1-based column
 * of the token's first character (plus `shift` characters, for a token inside a longer unique string).
 */
function at(text: string, lineMarker: string, token: string, shift = 0): { line: number; col: number } {
  const lines = text.split('\n');
  const hits = lines.flatMap((l, i) => (l.includes(lineMarker) ? [i] : []));
  if (hits.length !== 1) throw new Error(`test setup: '${lineMarker}' must be on exactly one line (found ${hits.length})`);
  const line = lines[hits[0]!]!;
  const idx = line.indexOf(token);
  if (idx < 0 || line.indexOf(token, idx + 1) >= 0) throw new Error(`test setup: '${token}' must occur once on line '${line}'`);
  return { line: hits[0]! + 1, col: idx + 1 + shift };
}

async function writeVariant(name: string, text: string): Promise<{ dir: string; file: string }> {
  const dir = join(tmp, name);
  await mkdir(dir, { recursive: true });
  const file = join(dir, FILE_NAME);
  await writeFile(file, text);
  return { dir, file };
}

function expectFormatted(diagnostics: Diagnostic[]): void {
  for (const d of diagnostics) expect(formatDiagnostic(d)).toMatch(/^.+\.yaml:\d+:\d+: /);
}

interface Case {
  name: string;
  text: () => string;
  where: (text: string) => { line: number; col: number };
  message: RegExp;
  /** YAML parse errors may come with follow-on errors: only the first is pinned down. */
  firstOnly?: boolean;
}

const cases: Case[] = [
  {
    name: 'YAML syntax error (a flow map closed with ])',
    text: () => variant('timeouts: { connect_ms: 5000, response_ms: 30000 }', 'timeouts: { connect_ms: 5000, response_ms: 30000 ]'),
    where: (t) => at(t, 'timeouts: {', ']'),
    message: /^YAML: /,
    firstOnly: true,
  },
  {
    name: 'YAML duplicate key',
    text: () => variant('spec_version: 1\n', 'spec_version: 1\nspec_version: 1\n'),
    where: (t) => ({ line: at(t, 'vendor: salesforce_marketing_cloud', 'vendor').line - 1, col: 1 }),
    message: /^YAML: .*unique/,
    firstOnly: true,
  },
  {
    name: 'schema: bad method',
    text: () => variant('    method: POST\n    url: https://{$config.tenant_subdomain}.rest', '    method: FETCH\n    url: https://{$config.tenant_subdomain}.rest'),
    where: (t) => at(t, 'method: FETCH', 'FETCH'),
    message: /^must /,
  },
  {
    name: 'schema: unknown key',
    text: () => variant('    method: POST\n    url: https://{$config.tenant_subdomain}.rest', '    method: POST\n    retries: 3\n    url: https://{$config.tenant_subdomain}.rest'),
    where: (t) => at(t, 'retries: 3', 'retries'),
    message: /unknown key 'retries'/,
  },
  {
    name: 'schema: missing send',
    text: () => original.slice(0, original.indexOf('\nsend:') + 1),
    // Nothing to point at but the document's top-level mapping: its first key.
    where: (t) => at(t, 'spec_version: 1', 'spec_version'),
    message: /missing required key 'send'/,
  },
  {
    name: 'JSONata syntax error in a body leaf',
    text: () => variant('ContactKey: properties.email', 'ContactKey: properties.email)'),
    where: (t) => at(t, 'ContactKey: properties.email)', ')'),
    message: /JSONata syntax error/,
  },
  {
    name: 'JSONata syntax error in a double-quoted preset field',
    text: () => variant('revenue : value)"', 'revenue : value))"'),
    where: (t) => at(t, 'order_value:', '))"', 1),
    message: /JSONata syntax error/,
  },
  {
    name: 'JSONata syntax error in a URL template placeholder',
    text: () => variant('url: https://{$config.tenant_subdomain}.rest', 'url: https://{$config.tenant_subdomain)}.rest'),
    where: (t) => at(t, '.rest.marketingcloudapis.com/interaction', ')'),
    message: /JSONata syntax error/,
  },
  {
    name: 'JSONata syntax error in a header template',
    text: () => variant('Bearer {$auth.token.access_token}', 'Bearer {$auth.token.access_token]}'),
    where: (t) => at(t, 'Authorization: Bearer', ']'),
    message: /JSONata syntax error/,
  },
  {
    name: 'unknown reference $config.tenant_subdomian (in a URL)',
    text: () => variant('url: https://{$config.tenant_subdomain}.rest', 'url: https://{$config.tenant_subdomian}.rest'),
    where: (t) => at(t, 'tenant_subdomian', 'tenant_subdomian'),
    message: /\$config\.tenant_subdomian/,
  },
  {
    name: 'unknown reference $auth.nope.access_token (in a header)',
    text: () => variant('Bearer {$auth.token.access_token}', 'Bearer {$auth.nope.access_token}'),
    where: (t) => at(t, 'Authorization: Bearer', 'nope'),
    message: /\$auth\.nope/,
  },
  {
    name: 'unknown reference $unknownvar (in a body leaf)',
    text: () => variant('        user_id: user_id', '        user_id: $unknownvar'),
    where: (t) => at(t, 'user_id: $unknownvar', '$unknownvar'),
    message: /\$unknownvar/,
  },
  {
    name: 'unknown reference in a single-quoted check',
    text: () => variant(`- that: '$exists(ContactKey) and`, `- that: '$exists($contact_key) and`),
    where: (t) => at(t, '- that:', '$contact_key'),
    message: /\$contact_key/,
  },
  {
    name: "unknown reference after a '' escape in a single-quoted check",
    text: () => variant(`$trim($string(ContactKey)) != ""'`, `$trim($string(ContactKey)) != '''' and $nope'`),
    where: (t) => at(t, '- that:', '$nope'),
    message: /\$nope/,
  },
  {
    name: 'cache_key naming an undeclared config field',
    text: () => variant('cache_key: [tenant_subdomain, client_id, account_id]', 'cache_key: [tenant_subdomain, client_id, business_unit]'),
    where: (t) => at(t, 'cache_key:', 'business_unit'),
    message: /business_unit/,
  },
];

describe('spec diagnostics point at the exact line and column', () => {
  it('the bundled spec itself is clean', () => {
    expect(checkSpecText(FILE_NAME, original).diagnostics).toEqual([]);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const text = c.text();
    const expected = c.where(text);

    const fromText = checkSpecText(FILE_NAME, text);
    expect(fromText.spec).toBeUndefined();
    if (!c.firstOnly) expect(fromText.diagnostics).toHaveLength(1);
    const d = fromText.diagnostics[0]!;
    expect({ file: d.file, line: d.line, col: d.col }).toEqual({ file: FILE_NAME, ...expected });
    expect(d.message).toMatch(c.message);
    expectFormatted(fromText.diagnostics);
    expect(formatDiagnostic(d).startsWith(`${FILE_NAME}:${expected.line}:${expected.col}: `)).toBe(true);

    const safeName = c.name.replace(/[^a-z0-9]+/gi, '-');
    const { dir, file } = await writeVariant(safeName, text);
    const fromDir = await checkSpecs([dir]);
    expect(fromDir.specs.size).toBe(0);
    if (!c.firstOnly) expect(fromDir.diagnostics).toHaveLength(1);
    const fd = fromDir.diagnostics[0]!;
    expect({ file: fd.file, line: fd.line, col: fd.col }).toEqual({ file, ...expected });
    expect(fd.message).toBe(d.message);
    expectFormatted(fromDir.diagnostics);
  });

  it('a vendor defined by two files: the second is reported at its vendor value', async () => {
    const dir = join(tmp, 'duplicate-vendor');
    await mkdir(dir, { recursive: true });
    const first = join(dir, 'a_marketing_cloud.yaml');
    const second = join(dir, 'b_marketing_cloud.yaml');
    await writeFile(first, original);
    await writeFile(second, original);
    const r = await checkSpecs([dir]);
    expect([...r.specs.keys()]).toEqual(['salesforce_marketing_cloud']);
    expect(r.specs.get('salesforce_marketing_cloud')!.file).toBe(first);
    expect(r.diagnostics).toHaveLength(1);
    const d = r.diagnostics[0]!;
    expect({ file: d.file, line: d.line, col: d.col }).toEqual({ file: second, ...at(original, 'vendor: salesforce_marketing_cloud', 'salesforce_marketing_cloud') });
    expect(d.message).toContain('salesforce_marketing_cloud');
    expect(d.message).toContain(first);
    expectFormatted(r.diagnostics);
  });
});

describe('every problem is reported, not just the first', () => {
  it('three independent expression problems → three diagnostics, each at its place', async () => {
    let text = variant('ContactKey: properties.email', 'ContactKey: properties.email)');
    text = variant('url: https://{$config.tenant_subdomain}.rest', 'url: https://{$config.tenant_subdomian}.rest', text);
    text = variant('cache_key: [tenant_subdomain, client_id, account_id]', 'cache_key: [tenant_subdomain, client_id, business_unit]', text);
    const expected = [
      at(text, 'cache_key:', 'business_unit'),
      at(text, 'tenant_subdomian', 'tenant_subdomian'),
      at(text, 'ContactKey: properties.email)', ')'),
    ];
    const { diagnostics } = checkSpecText(FILE_NAME, text);
    expect(diagnostics).toHaveLength(3);
    const byLine = (a: { line: number }, b: { line: number }) => a.line - b.line;
    expect(diagnostics.map((d) => ({ line: d.line, col: d.col })).sort(byLine)).toEqual(expected.sort(byLine));
    expectFormatted(diagnostics);

    // Loading such a folder fails with one SpecError that lists all three.
    const { dir } = await writeVariant('three-expression-problems', text);
    const err = await Engine.load({ specs: dir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SpecError);
    expect((err as SpecError).diagnostics).toHaveLength(3);
    expect((err as SpecError).message.split('\n')).toHaveLength(3);
    for (const line of (err as SpecError).message.split('\n')) expect(line).toMatch(/^.+\.yaml:\d+:\d+: /);
  });

  it('three independent schema problems → three diagnostics, each at its place', () => {
    let text = variant('spec_version: 1\n', 'spec_version: 2\n');
    text = variant('    method: POST\n    url: https://{$config.tenant_subdomain}.rest', '    method: FETCH\n    url: https://{$config.tenant_subdomain}.rest', text);
    text = variant('    cache_key: [', '    retries: 3\n    cache_key: [', text);
    const expected = [at(text, 'spec_version: 2', '2'), at(text, 'retries: 3', 'retries'), at(text, 'method: FETCH', 'FETCH')];
    const { diagnostics } = checkSpecText(FILE_NAME, text);
    expect(diagnostics).toHaveLength(3);
    const byLine = (a: { line: number }, b: { line: number }) => a.line - b.line;
    expect(diagnostics.map((d) => ({ line: d.line, col: d.col })).sort(byLine)).toEqual(expected.sort(byLine));
    expectFormatted(diagnostics);
  });
});
