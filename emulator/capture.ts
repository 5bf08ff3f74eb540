/**
 * The capture vendor: a local stub server (loopback only) for any spec that has no dedicated emulator.
 * It knows nothing of a vendor beyond what the spec declares:
 *   - which stage a request is for: its method and URL (X-Forwarded-Host + path, as an endpoint override
 *     sends it) matched against the spec's request templates — literal parts must match, placeholders
 *     match anything, and the template with the most literal characters wins;
 *   - what to answer: the stage's first success status, with a body that holds what the spec reads from
 *     it — each auth `result` output (a fresh token, or for a `public` output a URL on an allowed host),
 *     `expires_in`, `token_type`; the send's `success.id` and `keep`; a batch's per-item `results`;
 *   - what an error looks like: an injected failure carries the stage's `vendor_error.code` path filled
 *     with the code asked for, so the spec's own error rules classify it.
 * Only simple paths in those expressions (`a.b.c`) are filled; anything else is left for the spec to
 * find missing. Every request is recorded (`requests`); failures are injected per stage, for the Nth
 * request(s) or a fraction of them (seeded, reproducible).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import jsonata from 'jsonata';
import type { CompiledSpec } from '../engine/index.js';
import type { RequestSpec, StatusMatch } from '../engine/spec/types.js';
import { mulberry32 } from './prng.js';
import { firstHeader, readBody } from './http-util.js';
import { redactBody } from './format.js';

/** A failure to inject: answer `status` to requests of `stage` — the Nth ones (1-based), a fraction, or all. */
export interface CaptureFault {
  status: number;
  /** `auth` (any auth stage), `auth.<name>`, `send` or `poll`; default: every request. */
  stage?: string;
  /** Only these requests of the stage (1-based, counted since the last reset). */
  nth?: number[];
  /** Only this fraction of them (0..1, seeded). */
  rate?: number;
  /** The vendor code to put where the stage's `vendor_error.code` reads it. */
  code?: string;
}

export interface CapturedRequest {
  n: number;
  at: string;
  method: string;
  /** The host the request was meant for (X-Forwarded-Host), else the Host header. */
  host: string;
  path: string;
  query: string;
  stage: string;
  headers: Record<string, string>;
  body: string;
  status: number;
  response_body: string;
  fault?: string;
}

export interface CaptureOptions {
  spec: CompiledSpec;
  host?: string;
  port?: number;
  faults?: CaptureFault[];
  seed?: number;
  /** Lifetime (seconds) put where the spec reads `expires_in`. Default 3600. */
  expiresIn?: number;
}

export interface Capture {
  url: string;
  /** The spec requests are matched against (replace it when the spec file changes). */
  spec: CompiledSpec;
  requests: CapturedRequest[];
  /** Tokens issued so far: they are secrets, redacted wherever requests are shown. */
  tokens: string[];
  setFaults(faults: CaptureFault[]): void;
  /** Forget requests and fault counters (issued tokens stay known, for redaction). */
  reset(): void;
  close(): Promise<void>;
}

interface Route {
  stage: string;
  method: string | undefined;
  pattern: RegExp;
  literal: number;
}

/** `https://{$config.x}.example.com/a?b={y}` → a regex over `host/path?query` and how many literal characters it pins. */
function templatePattern(url: string): { pattern: RegExp; literal: number } {
  let re = '';
  let literal = 0;
  let depth = 0;
  const text = url.replace(/^https?:\/\//, '');
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '{') {
      if (depth++ === 0) re += '.*?';
    } else if (c === '}' && depth > 0) depth--;
    else if (depth === 0) {
      re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      literal++;
    }
  }
  return { pattern: new RegExp(`^(https?://)?${re}$`, 'i'), literal };
}

function routesOf(spec: CompiledSpec): Route[] {
  const out: Route[] = [];
  const add = (stage: string, r: RequestSpec | undefined) => {
    if (!r) return;
    const method = /^[A-Z]+$/.test(String(r.method)) ? String(r.method) : undefined;
    out.push({ stage, method, ...templatePattern(String(r.url)) });
  };
  for (const a of spec.spec.auth ?? []) add(`auth.${a.name}`, a.request);
  add('send', spec.spec.send.request);
  add('poll', spec.spec.send.batch?.poll?.status);
  add('poll', spec.spec.send.batch?.poll?.results);
  return out;
}

function stageOf(routes: Route[], method: string, target: string): string {
  let best: Route | undefined;
  for (const r of routes) {
    if (r.method && r.method !== method) continue;
    if (!r.pattern.test(target)) continue;
    if (!best || r.literal > best.literal) best = r;
  }
  return best?.stage ?? 'unknown';
}

/** The simple paths (`a.b.c`) an expression reads from its input. */
function pathsOf(expr: unknown): string[][] {
  if (typeof expr !== 'string') return [];
  let ast: unknown;
  try {
    ast = jsonata(expr).ast();
  } catch {
    return [];
  }
  const out: string[][] = [];
  const visit = (n: unknown): void => {
    if (Array.isArray(n)) return n.forEach(visit);
    if (!n || typeof n !== 'object') return;
    const node = n as { type?: string; value?: unknown; steps?: unknown[] };
    if (node.type === 'name' && typeof node.value === 'string') return void out.push([node.value]);
    if (node.type === 'path' && Array.isArray(node.steps)) {
      const steps = node.steps as { type?: string; value?: unknown }[];
      if (steps.every((s) => s.type === 'name' && typeof s.value === 'string')) return void out.push(steps.map((s) => s.value as string));
    }
    for (const [k, v] of Object.entries(node)) if (k !== 'value' || typeof v === 'object') visit(v);
  };
  visit(ast);
  return out;
}

function put(target: Record<string, unknown>, path: string[], value: unknown): void {
  let o = target;
  for (const key of path.slice(0, -1)) {
    if (typeof o[key] !== 'object' || o[key] === null) o[key] = {};
    o = o[key] as Record<string, unknown>;
  }
  o[path[path.length - 1]!] = value;
}

function fill(target: Record<string, unknown>, expr: unknown, value: unknown): void {
  for (const p of pathsOf(expr)) put(target, p, value);
}

/** The first status a stage counts as success (`2xx` → 200). */
function successStatus(list: StatusMatch[] | undefined): number {
  const first = list?.[0];
  if (typeof first === 'number') return first;
  const m = /^([1-5])xx$/i.exec(String(first ?? '2xx'));
  return m ? Number(m[1]) * 100 : 200;
}

/** A host the spec allows, for a URL the capture names in a token answer (`*.api.example` → `capture.api.example`). */
function allowedHost(spec: CompiledSpec): string {
  const h = spec.spec.allowed_hosts[0] ?? 'capture.invalid';
  return h.replace(/^\*\*?\./, 'capture.').replace(/:\d+$/, '');
}

/** How many items a batch request carries: a bare list, or the first list inside the body. */
function itemCount(body: unknown): number {
  const queue: unknown[] = [body];
  while (queue.length) {
    const v = queue.shift();
    if (Array.isArray(v)) return v.length;
    if (v && typeof v === 'object') queue.push(...Object.values(v));
  }
  return 1;
}

export async function startCapture(opts: CaptureOptions): Promise<Capture> {
  let faults = opts.faults ?? [];
  let random = mulberry32(opts.seed ?? 1);
  const counts = new Map<string, number>();
  const requests: CapturedRequest[] = [];
  const tokens: string[] = [];
  let routes = routesOf(opts.spec);
  let current = opts.spec;
  let ids = 0;

  const answer = (stage: string, json: unknown): { status: number; body: Record<string, unknown> } => {
    const spec = current.spec;
    if (stage.startsWith('auth.')) {
      const a = spec.auth?.find((s) => `auth.${s.name}` === stage);
      const body: Record<string, unknown> = {};
      if (!a) return { status: 200, body };
      const urls = new Set<string>();
      for (const t of [spec.send.request.url, ...(spec.auth ?? []).map((x) => x.request.url)]) {
        for (const m of String(t).matchAll(/\{\s*\$auth\.([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\s*\}/g)) if (m[1] === a.name) urls.add(m[2]!);
      }
      for (const [name, expr] of Object.entries(a.result)) {
        let value: string;
        if (a.public?.includes(name)) value = urls.has(name) ? `https://${allowedHost(current)}` : `capture-${name}`;
        else tokens.push((value = `cap_${name}_${randomBytes(9).toString('base64url')}`));
        fill(body, expr, value);
      }
      if (a.expires_in !== undefined) fill(body, a.expires_in, opts.expiresIn ?? 3600);
      if (a.token_type) body.token_type = a.token_type;
      return { status: successStatus(a.success?.status), body };
    }
    const body: Record<string, unknown> = {};
    if (stage === 'send') {
      const s = spec.send;
      fill(body, s.success?.id, `cap_${++ids}`);
      for (const expr of Object.values(s.success?.keep ?? {})) fill(body, expr, 'captured');
      const results = s.batch?.results;
      if (results?.items) {
        const items = Array.from({ length: itemCount(json) }, () => {
          const item: Record<string, unknown> = {};
          fill(item, results.id, `cap_${++ids}`);
          return item;
        });
        for (const p of pathsOf(results.items)) put(body, p, items);
      }
      return { status: successStatus(s.success?.status), body };
    }
    return { status: 200, body };
  };

  const injected = (stage: string): CaptureFault | undefined => {
    for (const [i, f] of faults.entries()) {
      if (f.stage && !(stage === f.stage || stage.startsWith(`${f.stage}.`))) continue;
      const n = (counts.get(`${i}`) ?? 0) + 1;
      counts.set(`${i}`, n);
      if (f.nth && !f.nth.includes(n)) continue;
      if (f.rate !== undefined && !(random() < f.rate)) continue;
      return f;
    }
    return undefined;
  };

  const failureBody = (stage: string, f: CaptureFault): Record<string, unknown> => {
    const spec = current.spec;
    const ve = stage === 'send' || stage === 'poll' ? spec.send.vendor_error : spec.auth?.find((a) => `auth.${a.name}` === stage)?.vendor_error;
    const body: Record<string, unknown> = {};
    fill(body, ve?.message, `capture: injected ${f.status}${f.code ? ` ${f.code}` : ''}`);
    if (f.code !== undefined) fill(body, ve?.code, f.code);
    return body;
  };

  const server = http.createServer((req, res) => {
    void (async () => {
      const body = await readBody(req, 8 * 1024 * 1024).catch(() => undefined);
      if (!body) return void req.socket.destroy();
      const url = new URL(req.url ?? '/', 'http://capture.invalid');
      const method = req.method ?? 'GET';
      const reply = (status: number, payload: unknown) => {
        const text = JSON.stringify(payload);
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
        res.end(text);
        return text;
      };
      // The capture's own listing (not a vendor path: a spec's URL never starts with /_capture/).
      if (method === 'GET' && url.pathname === '/_capture/requests') return void reply(200, requests.map((r) => shown(r, tokens)));
      const host = (firstHeader(req.headers['x-forwarded-host']) ?? firstHeader(req.headers.host) ?? '').split(',')[0]!.trim();
      const stage = stageOf(routes, method, `${host}${url.pathname}${url.search}`);
      let json: unknown;
      try {
        json = body.text ? JSON.parse(body.text) : undefined;
      } catch {
        json = undefined;
      }
      const f = injected(stage);
      const a = f ? { status: f.status, body: failureBody(stage, f) } : answer(stage, json);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const response_body = reply(a.status, a.body);
      requests.push({
        n: requests.length + 1,
        at: new Date().toISOString(),
        method,
        host,
        path: url.pathname,
        query: url.search,
        stage,
        headers,
        body: body.text,
        status: a.status,
        response_body,
        ...(f ? { fault: `injected ${f.status}` } : {}),
      });
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port: opts.port ?? 0, host: opts.host ?? '127.0.0.1' }, () => resolve());
  });
  const { port, address } = server.address() as AddressInfo;
  return {
    url: `http://${address.includes(':') ? `[${address}]` : address}:${port}`,
    get spec() {
      return current;
    },
    set spec(s: CompiledSpec) {
      current = s;
      routes = routesOf(s);
    },
    requests,
    tokens,
    setFaults: (f) => {
      faults = f;
      counts.clear();
    },
    reset: () => {
      requests.length = 0;
      counts.clear();
      random = mulberry32(opts.seed ?? 1);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const SECRET_HEADER = /^(authorization|proxy-authorization|cookie)$|api[-_]?key|token|secret|password|signature/i;

/** A captured request as it may be shown: credential headers, secret fields and issued tokens redacted. */
export function shown(r: CapturedRequest, secrets: readonly string[]): Omit<CapturedRequest, 'response_body'> & { response_body: string } {
  const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, SECRET_HEADER.test(k) ? '[redacted]' : v]));
  return { ...r, headers, body: redactBody(r, secrets), response_body: redactBody({ body: r.response_body, headers: { 'content-type': 'application/json' } }, secrets) };
}

/** One line per request: `#1 auth.token POST mytenant.login.acme.example/oauth2/v1/token → 200 {body}`, redacted. */
export function formatCaptured(c: Pick<Capture, 'requests' | 'tokens'>, opts: { maxBody?: number; secrets?: readonly string[] } = {}): string {
  const max = opts.maxBody ?? 300;
  if (!c.requests.length) return '(no requests received)';
  return c.requests
    .map((r) => {
      let body = shown(r, [...c.tokens, ...(opts.secrets ?? [])]).body;
      if (body.length > max) body = `${body.slice(0, max)}… (${r.body.length} characters)`;
      return `#${r.n} ${r.stage} ${r.method} ${r.host}${r.path}${r.query} → ${r.status}${r.fault ? ` [${r.fault}]` : ''}${body ? ` ${body}` : ''}`;
    })
    .join('\n');
}
