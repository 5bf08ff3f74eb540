import type { Emulator, RecordedRequest } from './types.js';

export interface FormatReceivedOptions {
  /** Show only the last N requests (default: all). */
  last?: number;
  /** Truncate each body to this many characters (default 300). */
  maxBody?: number;
}

const REDACTED = '[redacted]';
const SECRET_KEYS = /^(client_secret|access_token|refresh_token|password|authorization)$/i;

function redactValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactValue);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = SECRET_KEYS.test(k) ? REDACTED : redactValue(v);
    }
    return out;
  }
  return value;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Body text with secrets replaced: JSON and form bodies structurally, anything else by pattern. */
export function redactBody(rec: Pick<RecordedRequest, 'body' | 'headers'>, knownSecrets: readonly string[] = []): string {
  let text = rec.body;
  if (text === '') return '';
  const ct = String(rec.headers['content-type'] ?? '').toLowerCase();
  let done = false;
  if (ct.includes('application/x-www-form-urlencoded')) {
    const params = new URLSearchParams(text);
    for (const k of [...params.keys()]) if (SECRET_KEYS.test(k)) params.set(k, REDACTED);
    text = params.toString().replace(/%5Bredacted%5D/g, REDACTED);
    done = true;
  } else {
    try {
      text = JSON.stringify(redactValue(JSON.parse(text) as unknown));
      done = true;
    } catch {
      // not JSON: fall through to the pattern-based redaction
    }
  }
  if (!done) {
    text = text.replace(
      /((?:client_secret|access_token|refresh_token|password)["']?\s*[:=]\s*["']?)([^"'&,\s}]+)/gi,
      `$1${REDACTED}`,
    );
  }
  // Belt and braces: a configured secret never appears, whatever field it was put in.
  for (const secret of knownSecrets) {
    if (secret.length >= 4) text = text.replace(new RegExp(escapeRegExp(secret), 'g'), REDACTED);
  }
  return text;
}

/**
 * A short human summary of what the emulator received, one line per request:
 *   `#1 POST /v2/token tenant=mc-abc123xyz(auth) → 200 {"grant_type":...,"client_secret":"[redacted]"}`
 * The Authorization header and client secrets (and access tokens) are replaced by `[redacted]`.
 */
export function formatReceived(emu: Pick<Emulator, 'requests' | 'clients'>, opts: FormatReceivedOptions = {}): string {
  const maxBody = opts.maxBody ?? 300;
  const secrets = emu.clients.map((c) => c.client_secret);
  const all = emu.requests;
  const start = opts.last !== undefined ? Math.max(0, all.length - opts.last) : 0;
  const lines: string[] = [];
  for (let i = start; i < all.length; i++) {
    const r = all[i];
    if (!r) continue;
    const where = `tenant=${r.tenant ?? '-'}${r.host_kind ? `(${r.host_kind})` : ''}`;
    const outcome = r.status === 0 ? (r.fault ? `reset (${r.fault})` : 'no answer') : String(r.status);
    const fault = r.fault && r.status !== 0 ? ` [fault: ${r.fault}]` : '';
    const auth = r.headers['authorization'] !== undefined ? ` auth=Bearer ${REDACTED}` : '';
    let body = redactBody(r, secrets);
    if (body.length > maxBody) body = `${body.slice(0, maxBody)}… (${r.bytes} bytes)`;
    lines.push(`#${i + 1} ${r.method} ${r.path}${r.query} ${where}${auth} → ${outcome}${fault}${body ? ` ${body}` : ''}`);
  }
  if (lines.length === 0) return '(no requests received)';
  return lines.join('\n');
}
