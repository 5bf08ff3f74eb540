/**
 * Building wire requests from compiled request specs. Shared by delivery and preview, so a preview is
 * byte for byte what would be sent.
 */
import { DeliveryError, REASONS } from '../errors.js';
import type { Bindings, CompiledExpr } from '../compile/expression.js';
import type { CompiledRequest, CompiledTemplate } from '../compile/spec.js';
import { renderTemplate, TemplateValueError } from '../compile/template.js';
import { hostAllowed } from '../policy/hosts.js';
import type { WireRequest } from './http.js';

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

export async function value(expr: CompiledExpr, input: unknown, bindings: Bindings): Promise<unknown> {
  const v = expr.evaluate(input, bindings);
  return v instanceof Promise ? await v : v;
}

export async function renderTpl(t: CompiledTemplate, input: unknown, bindings: Bindings, preview = false): Promise<string> {
  const values: unknown[] = [];
  for (const e of t.exprs) values.push(await value(e, input, bindings));
  return renderTemplate(t.parts, values, t.context, t.origin ? (preview ? 'as-is' : 'check') : undefined);
}

/** An endpoint override, parsed once: its origin and path prefix. */
export interface EndpointBase {
  origin: string;
  path: string;
}

export function parseEndpoint(endpoint: string): EndpointBase {
  const base = new URL(endpoint);
  return { origin: base.origin, path: base.pathname.replace(/\/$/, '') };
}

type UrlParts = Pick<URL, 'protocol' | 'username' | 'password' | 'hostname' | 'host' | 'pathname' | 'search'>;
const parsedUrls = new Map<string, UrlParts>();

/**
 * URLs parsed once: an integration's request URL is usually the same string for every event, and
 * `route` and `checkHost` each needed a `new URL` per request. Bounded; an invalid URL throws as before.
 */
function parseUrl(url: string): UrlParts {
  let parts = parsedUrls.get(url);
  if (!parts) {
    const u = new URL(url);
    parts = { protocol: u.protocol, username: u.username, password: u.password, hostname: u.hostname, host: u.host, pathname: u.pathname, search: u.search };
    if (parsedUrls.size >= 1_000) parsedUrls.clear();
    parsedUrls.set(url, parts);
  }
  return parts;
}

/** Pure: where a request goes once an endpoint override applies (path and query kept). */
export function applyEndpoint(url: string, endpoint: string | EndpointBase | undefined): { url: string; forwardedHost?: string } {
  if (!endpoint) return { url };
  const base = typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint;
  const original = parseUrl(url);
  return { url: `${base.origin}${base.path}${original.pathname}${original.search}`, forwardedHost: original.host };
}

export function encodeBody(body: unknown, encoding: 'json' | 'form'): string {
  if (encoding === 'json') return JSON.stringify(body);
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (v === undefined || v === null) continue;
    params.append(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  return params.toString();
}

/** `preview`: origins from auth results are stand-ins (nothing was fetched), inserted as they are. */
export async function renderRequest(stage: string, req: CompiledRequest, input: unknown, bindings: Bindings, body: unknown, preview = false): Promise<WireRequest> {
  const method = typeof req.method === 'string' ? req.method : (await renderTpl(req.method, input, bindings)).toUpperCase();
  if (!METHODS.has(method)) throw new TemplateValueError(`${stage}: method renders to '${method}', not an HTTP method`);
  const url = await renderTpl(req.url, input, bindings, preview);
  const headers: Record<string, string> = {};
  for (const h of req.headers) headers[h.name] = await renderTpl(h.value, input, bindings);
  const wire: WireRequest = { stage, method, url, headers };
  if (body !== undefined) {
    wire.body = encodeBody(body, req.encoding);
    if (!req.hasContentType) headers['Content-Type'] = req.encoding === 'json' ? 'application/json' : 'application/x-www-form-urlencoded';
  }
  return wire;
}

/** Checked after templating and before anything is sent: an http(s) URL, no credentials, an allowed host. */
export function checkHost(stage: string, url: string, allowed: readonly string[]): void {
  let parsed: UrlParts;
  try {
    parsed = parseUrl(url);
  } catch {
    throw new DeliveryError(REASONS.hostNotAllowed, `${stage}: the request URL is not a valid URL`);
  }
  if (parsed.username || parsed.password || !['https:', 'http:'].includes(parsed.protocol) || !hostAllowed(parsed.hostname, [...allowed])) {
    throw new DeliveryError(REASONS.hostNotAllowed, `${stage}: host '${parsed.hostname}' is not in the spec's allowed_hosts (${allowed.join(', ')})`, {
      hint: 'The request URL was built from the config or the event; check the values that fill the URL template.',
    });
  }
}
