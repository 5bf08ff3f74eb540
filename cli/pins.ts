/**
 * Pins: small YAML files beside the specs that fix the exact requests an integration record and an
 * event must produce (the preview, secrets redacted) — or the reason the event is not sent. Authors
 * run them with `signal-integrations test`, write them with `--update`, and CI runs them in `npm test`.
 *
 *   description: The product reference's Lead Submitted example, byte for byte.
 *   record: { vendor: ..., config: { ... } }      # an inline object, or a JSON file's path relative to this file
 *   event: { type: track, event: ..., ... }        # likewise (the shipped pins inline both, so they work installed)
 *   clock: 2026-01-01T00:00:00.000Z                # optional: what $now() / $millis() answer (default below)
 *   requests:                                      # expected: [{stage, method, url, headers, body}]
 *     - ...                                        # a JSON body is a YAML structure (compared byte for byte as
 *                                                  # compact JSON, keys in order); other bodies are strings
 *   # or, for an event that is not sent (deliver skips it, or it fails before a request):
 *   not_sent: { reason: check_failed }                # or event_not_forwarded, consent_not_granted, integration_disabled, ...
 */
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parseDocument } from 'yaml';
import { DeliveryError, type Engine, type IntegrationRecord, type PreviewRequest } from '../engine/index.js';

export interface PinResult {
  file: string;
  description?: string;
  ok: boolean;
  /** What differs, one line each; empty when the pin holds. */
  problems: string[];
  updated?: boolean;
}

type Actual = { requests: PreviewRequest[] } | { not_sent: { reason: string; message: string } };

export async function pinFiles(paths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined);
    if (!s) continue;
    if (s.isFile()) out.push(p);
    else {
      for (const e of await readdir(p, { withFileTypes: true })) {
        const full = join(p, e.name);
        if (e.isDirectory()) out.push(...(await pinFiles([full])));
        else if (['.yaml', '.yml'].includes(extname(e.name))) out.push(full);
      }
    }
  }
  return out.sort();
}

async function operand(file: string, v: unknown, what: string): Promise<unknown> {
  if (typeof v !== 'string') return v;
  const path = resolve(dirname(file), v);
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (e) {
    throw new Error(`${what} '${v}' cannot be read as JSON: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** The clock pins run under unless they say otherwise: `$now()` gives the same answer on every run. */
export const PIN_CLOCK = '2026-01-01T00:00:00.000Z';

/**
 * Run `fn` with the clock frozen at `at` (JSONata reads `new Date()` once per evaluation for $now and
 * $millis). Pins run one at a time and send nothing, so nothing else observes the frozen clock.
 */
export async function withFrozenClock<T>(at: number, fn: () => Promise<T>): Promise<T> {
  const RealDate = Date;
  class FrozenDate extends RealDate {
    constructor(...args: unknown[]) {
      if (args.length === 0) super(at);
      else super(...(args as [string | number]));
    }
    static override now(): number {
      return at;
    }
  }
  globalThis.Date = FrozenDate as DateConstructor;
  try {
    return await fn();
  } finally {
    globalThis.Date = RealDate;
  }
}

/** A JSON body as the structure it encodes, when compact JSON.stringify gives back the exact bytes. */
function bodyAsStructure(body: string | null | undefined): unknown {
  if (typeof body !== 'string') return body;
  try {
    const v = JSON.parse(body) as unknown;
    if (v !== null && typeof v === 'object' && JSON.stringify(v) === body) return v;
  } catch {
    // not JSON: kept as text
  }
  return body;
}

/** What a pin stores for a request: the JSON body as a YAML structure (readable diffs), anything else as is. */
export function pinRequest(r: PreviewRequest): Record<string, unknown> {
  return { ...r, body: bodyAsStructure(r.body) };
}

/** Where two bodies differ, key by key (JSON), or as text. */
function bodyDifferences(where: string, want: unknown, got: string | null): string[] {
  const wanted = want === undefined ? null : want;
  if (typeof wanted === 'string' || wanted === null) {
    return wanted === got ? [] : [`${where} body: expected ${wanted ?? 'none'}\n${' '.repeat(20)}got ${got ?? 'none'}`];
  }
  // Byte for byte: the expected structure as compact JSON, keys in the order the pin lists them.
  if (JSON.stringify(wanted) === got) return [];
  const actual = bodyAsStructure(got);
  if (typeof actual === 'string' || actual === null) return [`${where} body: expected ${JSON.stringify(wanted)}\n${' '.repeat(20)}got ${got ?? 'none'}`];
  const out: string[] = [];
  const walk = (path: string, a: unknown, b: unknown) => {
    const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object';
    if (isObj(a) && isObj(b) && Array.isArray(a) === Array.isArray(b)) {
      const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
      for (const k of keys) walk(Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`, a[k], b[k]);
      if (!Array.isArray(a) && out.length === 0 && JSON.stringify(Object.keys(a)) !== JSON.stringify(Object.keys(b))) {
        out.push(`${where} ${path}: keys in another order: expected ${Object.keys(a).join(', ')}; got ${Object.keys(b).join(', ')}`);
      }
      return;
    }
    if (!isDeepStrictEqual(a, b)) out.push(`${where} ${path}: expected ${a === undefined ? '(absent)' : JSON.stringify(a)}, got ${b === undefined ? '(absent)' : JSON.stringify(b)}`);
  };
  walk('body', wanted, actual);
  return out.length ? out : [`${where} body: expected ${JSON.stringify(wanted)}\n${' '.repeat(20)}got ${got}`];
}

/** Say where two request lists differ: the first differing field of each request, bodies key by key. */
export function differences(expected: unknown, actual: Actual): string[] {
  const exp = expected as { requests?: (Omit<PreviewRequest, 'body'> & { body?: unknown })[]; not_sent?: { reason?: string } };
  if ('not_sent' in actual) {
    if (exp.not_sent) return exp.not_sent.reason === actual.not_sent.reason ? [] : [`not sent: expected reason ${exp.not_sent.reason}, got ${actual.not_sent.reason}`];
    return [`expected requests, but the event is not sent: ${actual.not_sent.reason}: ${actual.not_sent.message}`];
  }
  if (exp.not_sent) return [`expected the event not to be sent (${exp.not_sent.reason}), but it produces ${actual.requests.length} request(s)`];
  const want = exp.requests ?? [];
  const got = actual.requests;
  const out: string[] = [];
  if (want.length !== got.length) out.push(`expected ${want.length} request(s), got ${got.length} (${got.map((r) => r.stage).join(', ')})`);
  for (let i = 0; i < Math.min(want.length, got.length); i++) {
    const w = want[i]!;
    const g = got[i]!;
    for (const field of ['stage', 'method', 'url'] as const) if (w[field] !== g[field]) out.push(`request ${i + 1} ${field}: expected ${JSON.stringify(w[field])}, got ${JSON.stringify(g[field])}`);
    if (!isDeepStrictEqual(w.headers ?? {}, g.headers)) out.push(`request ${i + 1} (${g.stage}) headers: expected ${JSON.stringify(w.headers)}, got ${JSON.stringify(g.headers)}`);
    out.push(...bodyDifferences(`request ${i + 1} (${g.stage})`, w.body, g.body));
  }
  return out;
}

export async function runPin(engine: Engine, file: string, opts: { update?: boolean } = {}): Promise<PinResult> {
  const text = await readFile(file, 'utf8');
  const doc = parseDocument(text);
  const result: PinResult = { file, ok: false, problems: [] };
  if (doc.errors.length) {
    result.problems.push(`not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
    return result;
  }
  const pin = (doc.toJS() ?? {}) as Record<string, unknown>;
  if (typeof pin.description === 'string') result.description = pin.description;
  let actual: Actual;
  const clock = pin.clock instanceof Date ? pin.clock.getTime() : Date.parse(String(pin.clock ?? PIN_CLOCK));
  if (Number.isNaN(clock)) {
    result.problems.push(`clock '${String(pin.clock)}' is not an ISO 8601 date-time`);
    return result;
  }
  try {
    const record = await operand(file, pin.record, 'record');
    const event = await operand(file, pin.event, 'event');
    const integration = engine.createIntegration(record as IntegrationRecord);
    actual = await withFrozenClock(clock, async (): Promise<Actual> => {
      try {
        // The same gate as deliver: a disabled record, an event not forwarded or consent missing is a skip.
        const p = await integration.previewEvent(event);
        return p.status === 'skipped' ? { not_sent: { reason: p.reason, message: p.message } } : { requests: p.requests };
      } catch (e) {
        if (!(e instanceof DeliveryError)) throw e;
        return { not_sent: { reason: e.code, message: e.message } };
      }
    });
  } catch (e) {
    result.problems.push((e as Error).message);
    return result;
  }
  if (opts.update) {
    // Rewrite only the expectation: comments, description, record and event stay as written.
    doc.delete('requests');
    doc.delete('not_sent');
    if ('requests' in actual) doc.set('requests', actual.requests.map(pinRequest));
    else doc.set('not_sent', { reason: actual.not_sent.reason });
    await writeFile(file, doc.toString({ lineWidth: 0 }));
    return { ...result, ok: true, updated: true };
  }
  if (pin.requests === undefined && pin.not_sent === undefined) {
    result.problems.push('no expectation: add `requests` or `not_sent` (or run with --update to write what it produces now)');
    return result;
  }
  result.problems = differences(pin, actual);
  result.ok = result.problems.length === 0;
  return result;
}
