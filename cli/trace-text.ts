/**
 * One delivery's trace as text for a person — the input, each request as sent (redacted), each HTTP
 * attempt with its stage, status, duration and retry decision, the vendor's answers, the outcome with its
 * hint. Shared by `trace` (stored fleet traces) and the playground (a sent event). Every value goes
 * through `safe`: event ids, answers and hints come from outside.
 */
import type { EventTrace } from '../engine/run/trace.js';
import { safe } from './text.js';

export const indent = (n: number, text: string): string => ' '.repeat(n) + safe(text) + '\n';

export function eventTraceText(t: EventTrace): string {
  let out = indent(2, `input: ${JSON.stringify(t.event)}`);
  for (const r of t.requests) {
    out += indent(2, `request ${r.stage}: ${r.method} ${r.url}`);
    for (const [k, v] of Object.entries(r.headers)) out += indent(4, `${k}: ${v}`);
    if (r.body !== null) out += indent(4, `body: ${r.body}`);
  }
  for (const a of t.attempts) {
    const d = a.decision;
    const next = d ? `  → ${d.action}${d.delay_ms !== undefined ? ` in ${d.delay_ms} ms` : ''}${d.why ? ` (${d.why})` : ''}` : '';
    out += indent(2, `http ${a.stage}: ${a.status !== undefined ? `HTTP ${a.status}` : (a.network ?? 'no answer')}  ${a.duration_ms} ms${next}`);
    if (a.response !== undefined) out += indent(4, `answer: ${a.response}`);
  }
  const o = t.outcome;
  out += indent(2, `outcome: ${o.status}${o.reason ? ` ${o.reason}` : ''}${o.http_status !== undefined ? ` HTTP ${o.http_status}` : ''}${o.message ? ` — ${o.message}` : ''}`);
  if (o.vendor_code !== undefined || o.vendor_message !== undefined) out += indent(4, `vendor: ${o.vendor_code ?? ''} ${o.vendor_message ?? ''}`.trimEnd());
  if (o.hint) out += indent(4, `hint: ${o.hint.replace(/\s+/g, ' ').trim()}`);
  return out;
}
