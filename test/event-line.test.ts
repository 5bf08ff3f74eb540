import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_LINE_BYTES, isBlankLine, parseEventLine, parseJsonSafely } from '../engine/index.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const good = { type: 'track', event: 'Lead Submitted', event_id: 'evt_1', properties: { email: 'a@example.com' } };
const line = (v: unknown): Uint8Array => enc(JSON.stringify(v));

function fail(bytes: Uint8Array, opts = {}): { message: string; raw?: string; event_id?: string } {
  const r = parseEventLine(bytes, opts);
  if (r.ok) throw new Error('expected a failure');
  return r;
}

describe('parseEventLine', () => {
  it('returns the event of a good line', () => {
    const r = parseEventLine(line(good));
    expect(r).toEqual({ ok: true, event: good });
  });

  it('accepts a CRLF-free line with surrounding whitespace and a BOM', () => {
    const r = parseEventLine(enc(`\ufeff  ${JSON.stringify(good)}  `));
    expect(r.ok).toBe(true);
  });

  it('refuses a line over the byte limit without decoding it (1 MiB by default)', () => {
    expect(DEFAULT_MAX_LINE_BYTES).toBe(1024 * 1024);
    const f = fail(line({ ...good, pad: 'x'.repeat(100) }), { maxBytes: 64 });
    expect(f.message).toMatch(/bytes, over the limit of 64 bytes/);
    expect(f.raw).toBeUndefined();
    expect(parseEventLine(line({ ...good, pad: 'x'.repeat(2000) })).ok).toBe(true);
  });

  it('refuses bytes that are not UTF-8, keeping a lossy copy of the text', () => {
    const bytes = new Uint8Array([...enc('{"type":"track","event":"A","event_id":"e'), 0xff, 0xfe, ...enc('"}')]);
    const f = fail(bytes);
    expect(f.message).toBe('line is not valid UTF-8');
    expect(f.raw).toContain('\ufffd');
  });

  it('refuses malformed JSON without quoting the line', () => {
    const f = fail(enc('{"type": "track", "event": supersecretvalue}'));
    expect(f.message).toMatch(/^not valid JSON/);
    expect(f.message).not.toContain('supersecret');
    expect(f.raw).toBe('{"type": "track", "event": supersecretvalue}');
    expect(fail(enc('{"a":1')).message).toMatch(/not valid JSON.*column 7/);
    const quoted = ['{"k": SECRETX}', `{"pad":"${'y'.repeat(80)}", "k": SECRETX}`, '{"k": "v" "SECRETX"}', '["SECRETX",]', '{"k":"SECRETX"} SECRETX', '{"k":"SECRETX'];
    for (const text of quoted) expect(fail(enc(text)).message).not.toContain('SECRETX');
  });

  it.each([
    ['[1,2]', /an array/],
    ['null', /got null/],
    ['"text"', /got string/],
    ['42', /got number/],
  ])('refuses %s: not an object', (text, msg) => {
    expect(fail(enc(text)).message).toMatch(msg);
  });

  it('reports every missing field of the event contract, with the event id when there is one', () => {
    const f = fail(line({ event: 'X' }));
    expect(f.message).toMatch(/type must be/);
    expect(f.message).toMatch(/event_id is missing/);
    const g = fail(line({ event_id: 'evt_9', type: 'track' }));
    expect(g.message).toMatch(/event \(the Signal event name\) is missing/);
    expect(g.event_id).toBe('evt_9');
  });

  it('refuses nesting deeper than 64 levels, before parsing', () => {
    const nest = (depth: number): string => {
      // the event object itself is level 1
      let inner = '1';
      for (let i = 0; i < depth - 1; i++) inner = `[${inner}]`;
      return `{"type":"track","event":"A","event_id":"e","properties":{"x":${inner}}}`;
    };
    // object(1) → properties(2) → arrays: depth - 1 more levels of `[`, all inside `properties`.
    expect(parseEventLine(enc(nest(62))).ok).toBe(true); // 2 + 61 = 63 levels
    expect(parseEventLine(enc(nest(63))).ok).toBe(true); // 64 levels
    expect(fail(enc(nest(64))).message).toBe('nesting deeper than 64 levels');
    expect(fail(enc('['.repeat(100_000))).message).toBe('nesting deeper than 64 levels');
    // brackets inside strings do not count
    expect(parseEventLine(line({ ...good, s: '[[[[{{{{'.repeat(50) })).ok).toBe(true);
    expect(fail(enc(nest(10)), { maxDepth: 5 }).message).toBe('nesting deeper than 5 levels');
  });

  it.each(['__proto__', 'constructor', 'prototype'])('refuses the key %s at any depth', (key) => {
    expect(fail(enc(`{"${key}":{"polluted":true},"type":"track","event":"A","event_id":"e"}`)).message).toBe(`forbidden key '${key}' in the top level`);
    const deep = `{"type":"track","event":"A","event_id":"e","properties":{"products":[{"${key}":1}]}}`;
    expect(fail(enc(deep)).message).toBe(`forbidden key '${key}' in properties.products[0]`);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses lone surrogates in strings and keys', () => {
    expect(fail(enc('{"type":"track","event":"A","event_id":"e","properties":{"name":"\\ud800"}}')).message).toBe(
      'the string at properties.name is not well-formed Unicode (lone surrogate)',
    );
    expect(fail(enc('{"type":"track","event":"A","event_id":"e","properties":{"\\udc00x":1}}')).message).toBe(
      'a key in properties is not well-formed Unicode (lone surrogate)',
    );
    // a proper pair is fine
    expect(parseEventLine(enc('{"type":"track","event":"A","event_id":"e","properties":{"name":"\\ud83d\\ude00"}}')).ok).toBe(true);
  });

  it('unwraps dead-letter envelopes only when asked', () => {
    const envelope = { dead_letter: { reason: 'http_error', line: 3 }, event: good };
    expect(parseEventLine(line(envelope)).ok).toBe(false);
    const r = parseEventLine(line(envelope), { unwrapDeadLetter: true });
    expect(r).toEqual({ ok: true, event: good, deadLetter: { reason: 'http_error', line: 3 } });
    const raw = fail(line({ dead_letter: { reason: 'invalid_event' }, raw_line: '{broken' }), { unwrapDeadLetter: true });
    expect(raw.message).toMatch(/dead-letter entry without an event/);
    expect(raw.raw).toBe('{broken'); // re-dead-lettered as the original line, not nested
    const bad = fail(line({ dead_letter: {}, event: { event_id: 'evt_2' } }), { unwrapDeadLetter: true });
    expect(bad.raw).toBe('{"event_id":"evt_2"}');
    expect(bad.event_id).toBe('evt_2');
  });

  it('isBlankLine: spaces, tabs and CR only', () => {
    expect(isBlankLine(enc(''))).toBe(true);
    expect(isBlankLine(enc(' \t\r '))).toBe(true);
    expect(isBlankLine(enc(' x '))).toBe(false);
  });

  it('parseJsonSafely applies the same defences to other JSON documents', () => {
    expect(parseJsonSafely('{"a":{"b":[1]}}')).toEqual({ ok: true, value: { a: { b: [1] } } });
    expect(parseJsonSafely('{"a":\n  {"__proto__": 1}}')).toEqual({ ok: false, message: "forbidden key '__proto__' in a" });
    const r = parseJsonSafely('{\n  "client_secret": hunter2\n}');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).not.toContain('hunter2');
  });
});
