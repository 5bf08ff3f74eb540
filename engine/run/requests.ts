/**
 * Building wire requests from compiled request specs. Shared by delivery and preview, so a preview is
 * byte for byte what would be sent.
 */
import { DeliveryError, REASONS } from '../errors.js';
import type { Bindings, CompiledExpr } from '../compile/expression.js';
import type { CompiledAuthStage, CompiledRequest, CompiledTemplate } from '../compile/spec.js';
import { basicCredentials } from '../policy/client-auth.js';
import { REDACTED } from '../policy/redact.js';
import { renderTemplate, TemplateValueError } from '../compile/template.js';
import { hostAllowed } from '../policy/hosts.js';
import type { WireRequest } from './http.js';

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * An auth stage's `client_auth` (RFC 6749 §2.3.1): the Authorization header (basic) or the body with
 * `client_id` and `client_secret` added (post), and the secret forms to redact. A preview shows
 * `Basic [redacted]` and a redacted secret, never an encoding of one.
 */
export async function applyClientAuth(
  stage: CompiledAuthStage,
  bindings: Bindings,
  body: unknown,
  preview: boolean,
): Promise<{ body: unknown; authorization?: string; secrets: string[] }> {
  const ca = stage.clientAuth!;
  const text = async (what: 'id' | 'secret'): Promise<string> => {
    const v = await value(ca[what], undefined, bindings);
    if ((typeof v !== 'string' && typeof v !== 'number') || v === '') throw new TemplateValueError(`auth.${stage.name}: client_auth.${what} has no value`);
    return String(v);
  };
  const id = await text('id');
  const secret = preview ? REDACTED : await text('secret');
  if (ca.method === 'post') return { body: { ...(body as Record<string, unknown> | undefined), client_id: id, client_secret: secret }, secrets: preview ? [] : [secret] };
  if (preview) return { body, authorization: `Basic ${REDACTED}`, secrets: [] };
  const authorization = basicCredentials(id, secret);
  return { body, authorization, secrets: [secret, authorization.slice('Basic '.length)] };
}

export async function value(expr: CompiledExpr, input: unknown, bindings: Bindings): Promise<unknown> {
  const v = expr.evaluate(input, bindings);
  return v instanceof Promise ? await v : v;
}

/** Undefined only for a header whose optional placeholder has no value (the header is left out). */
export async function renderTpl(t: CompiledTemplate, input: unknown, bindings: Bindings, preview = false): Promise<string | undefined> {
  const values: unknown[] = [];
  for (const e of t.exprs) values.push(await value(e, input, bindings));
  return renderTemplate(t.parts, values, t.context, t.origin ? (preview ? 'as-is' : 'check') : undefined);
}

/** A URL or method template: never left out (optional placeholders there drop a query parameter, or are refused at load). */
async function renderText(t: CompiledTemplate, input: unknown, bindings: Bindings, preview = false): Promise<string> {
  return (await renderTpl(t, input, bindings, preview)) ?? '';
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

type UrlParts = Pick<URL, 'protocol' | 'username' | 'password' | 'hostname' | 'host' | 'port' | 'pathname' | 'search'> & {
  /** The allowed_hosts list (by identity) this URL last passed `checkHost` against. */
  allowedBy?: readonly string[];
  /** Where this URL last went through an endpoint override (read-only: shared by every caller). */
  routed?: { base: EndpointBase; to: { readonly url: string; readonly forwardedHost?: string } };
};
const parsedUrls = new Map<string, UrlParts>();

/**
 * URLs parsed once: an integration's request URL is usually the same string for every event, and
 * `route` and `checkHost` each needed a `new URL` per request. Bounded; an invalid URL throws as before.
 */
function parseUrl(url: string): UrlParts {
  let parts = parsedUrls.get(url);
  if (!parts) {
    const u = new URL(url);
    parts = { protocol: u.protocol, username: u.username, password: u.password, hostname: u.hostname, host: u.host, port: u.port, pathname: u.pathname, search: u.search };
    if (parsedUrls.size >= 1_000) parsedUrls.clear();
    parsedUrls.set(url, parts);
  }
  return parts;
}

/** Pure: where a request goes once an endpoint override applies (path and query kept). */
export function applyEndpoint(url: string, endpoint: string | EndpointBase | undefined): { readonly url: string; readonly forwardedHost?: string } {
  if (!endpoint) return { url };
  const base = typeof endpoint === 'string' ? parseEndpoint(endpoint) : endpoint;
  const original = parseUrl(url);
  // The same URL to the same endpoint, event after event: routed once (by the endpoint object's identity).
  if (original.routed?.base !== base) original.routed = { base, to: { url: `${base.origin}${base.path}${original.pathname}${original.search}`, forwardedHost: original.host } };
  return original.routed.to;
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

/**
 * The wire request, synchronously when every template expression evaluates synchronously (the usual
 * case: no promise per template per event); from the first asynchronous one on it continues as
 * `renderRequest` does, each expression evaluated once, in the same order.
 */
export function renderRequestNow(stage: string, req: CompiledRequest, input: unknown, bindings: Bindings, body: unknown): WireRequest | Promise<WireRequest> {
  if (typeof req.method !== 'string') return renderRequest(stage, req, input, bindings, body);
  if (!METHODS.has(req.method)) throw new TemplateValueError(`${stage}: method renders to '${req.method}', not an HTTP method`);
  const url = renderTplNow(req.url, input, bindings) as string | Promise<string>;
  const headers: Record<string, string> = {};
  if (url instanceof Promise) return continueRequest(stage, req, input, bindings, body, url, headers, 0, undefined);
  for (let i = 0; i < req.headers.length; i++) {
    const h = req.headers[i]!;
    const v = renderTplNow(h.value, input, bindings);
    if (v instanceof Promise) return continueRequest(stage, req, input, bindings, body, url, headers, i, v);
    if (v !== undefined) headers[h.name] = v;
  }
  return finishRequest(stage, req, req.method, url, headers, body);
}

async function continueRequest(
  stage: string,
  req: CompiledRequest,
  input: unknown,
  bindings: Bindings,
  body: unknown,
  url: string | Promise<string>,
  headers: Record<string, string>,
  from: number,
  pending: Promise<string | undefined> | undefined,
): Promise<WireRequest> {
  const u = await url;
  for (let i = from; i < req.headers.length; i++) {
    const h = req.headers[i]!;
    const v = await (i === from && pending ? pending : renderTplNow(h.value, input, bindings));
    if (v !== undefined) headers[h.name] = v;
  }
  return finishRequest(stage, req, req.method as string, u, headers, body);
}

/**
 * Each template's last rendering, reused while its values are the same strings or numbers (an
 * integration's URL and auth header usually are, event after event): rendering is a pure function of them.
 */
const lastRendered = new WeakMap<CompiledTemplate, { values: unknown[]; out: string | undefined }>();

/** A template rendered synchronously when its expressions are, else a promise from the first that is not. */
function renderTplNow(t: CompiledTemplate, input: unknown, bindings: Bindings): string | undefined | Promise<string | undefined> {
  const values: unknown[] = [];
  for (let i = 0; i < t.exprs.length; i++) {
    const v = t.exprs[i]!.evaluate(input, bindings);
    if (v instanceof Promise) return continueTpl(t, input, bindings, values, i, v);
    values.push(v);
  }
  const last = lastRendered.get(t);
  if (last && sameValues(last.values, values)) return last.out;
  const out = renderTemplate(t.parts, values, t.context, t.origin ? 'check' : undefined);
  if (values.every((v) => typeof v === 'string' || typeof v === 'number')) lastRendered.set(t, { values, out });
  return out;
}

function sameValues(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function continueTpl(t: CompiledTemplate, input: unknown, bindings: Bindings, values: unknown[], from: number, first: Promise<unknown>): Promise<string | undefined> {
  values.push(await first);
  for (let i = from + 1; i < t.exprs.length; i++) values.push(await value(t.exprs[i]!, input, bindings));
  return renderTemplate(t.parts, values, t.context, t.origin ? 'check' : undefined);
}

/** `preview`: origins from auth results are stand-ins (nothing was fetched), inserted as they are. */
export async function renderRequest(stage: string, req: CompiledRequest, input: unknown, bindings: Bindings, body: unknown, preview = false): Promise<WireRequest> {
  const method = typeof req.method === 'string' ? req.method : (await renderText(req.method, input, bindings)).toUpperCase();
  if (!METHODS.has(method)) throw new TemplateValueError(`${stage}: method renders to '${method}', not an HTTP method`);
  const url = await renderText(req.url, input, bindings, preview);
  const headers: Record<string, string> = {};
  for (const h of req.headers) {
    const v = await renderTpl(h.value, input, bindings);
    if (v !== undefined) headers[h.name] = v;
  }
  return finishRequest(stage, req, method, url, headers, body);
}

function finishRequest(stage: string, req: CompiledRequest, method: string, url: string, headers: Record<string, string>, body: unknown): WireRequest {
  if (!METHODS.has(method)) throw new TemplateValueError(`${stage}: method renders to '${method}', not an HTTP method`);
  const wire: WireRequest = { stage, method, url, headers, template: req.url };
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
  // Already allowed by this very list (a spec's list is one array): the verdict cannot change.
  if (parsed.allowedBy === allowed) return;
  const scheme = parsed.protocol === 'https:' ? 443 : parsed.protocol === 'http:' ? 80 : undefined;
  if (parsed.username || parsed.password || scheme === undefined || !hostAllowed(parsed.hostname, allowed, parsed.port ? Number(parsed.port) : undefined, scheme)) {
    throw new DeliveryError(REASONS.hostNotAllowed, `${stage}: host '${parsed.port ? parsed.host : parsed.hostname}' is not in the spec's allowed_hosts (${allowed.join(', ')})`, {
      hint: 'The request URL was built from the config or the event; check the values that fill the URL template.',
    });
  }
  parsed.allowedBy = allowed;
}
