/**
 * Authoring checks beyond the schema and the compiler: what `deliver` would refuse later, found when the
 * spec loads (so `validate` reports it with file:line:col instead of every event failing at run time).
 *
 *   - a request URL without an http(s) scheme;
 *   - a URL whose literal host is outside `allowed_hosts` (the engine refuses it: host_not_allowed);
 *   - a bare name in a body that reads an event field Signal events do not have — almost always a
 *     constant written without quotes (`grant_type: client_credentials`);
 *   - `{...}` in a header value, URL or method, or `{expr}` in a body or mapping, that YAML read as a
 *     mapping instead of text (quote it).
 */
import { isMap, isScalar, type Node } from 'yaml';
import type { Diagnostic } from '../errors.js';
import { diagnosticAt, nodeAt, type KeyPath, type SpecSource } from '../load/source.js';
import { hostAllowed, splitHostEntry } from '../policy/hosts.js';
import type { IntegrationSpec, Mapping, RequestSpec } from '../spec/types.js';
import { SPREAD_KEY } from './mapping.js';
import { closest } from './suggest.js';

/** Top-level fields of a Signal event (docs/events.md) and of the envelope the runtime adds. */
const EVENT_FIELDS = new Set(['type', 'event', 'event_id', 'timestamp', 'user_id', 'anonymous_id', 'properties', 'consent', 'context', 'traits']);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every request of a spec with its key path (auth stages, send, poll requests). */
function requests(spec: Partial<IntegrationSpec>): { path: KeyPath; request: Partial<RequestSpec> }[] {
  const out: { path: KeyPath; request: Partial<RequestSpec> }[] = [];
  const add = (path: KeyPath, r: unknown) => {
    if (isObject(r)) out.push({ path, request: r as Partial<RequestSpec> });
  };
  if (Array.isArray(spec.auth)) spec.auth.forEach((s, i) => add(['auth', i, 'request'], (s as { request?: unknown } | undefined)?.request));
  const send = spec.send as Record<string, unknown> | undefined;
  if (isObject(send)) {
    add(['send', 'request'], send.request);
    const poll = isObject(send.batch) && isObject(send.batch.poll) ? send.batch.poll : undefined;
    if (poll) for (const k of ['status', 'results']) add(['send', 'batch', 'poll', k], poll[k]);
  }
  return out;
}

/** Text YAML would have kept had the value been quoted: `{$auth.token.access_token}` from `{ "$auth.token.access_token": null }`. */
function asWritten(v: Record<string, unknown>): string {
  return `{${Object.entries(v).map(([k, x]) => (x === null ? k : `${k}: ${JSON.stringify(x)}`)).join(', ')}}`;
}

/**
 * Before the schema: values that should be text but YAML read as a mapping. The schema would only say
 * "must be string"; this says why and what to write. Returns diagnostics at the value's location.
 */
export function yamlShapeHints(source: SpecSource): Diagnostic[] {
  const spec = source.value;
  if (!isObject(spec)) return [];
  const out: Diagnostic[] = [];
  for (const { path, request } of requests(spec)) {
    const hint = (where: KeyPath, v: unknown) => {
      if (!isObject(v)) return;
      const text = asWritten(v);
      out.push(diagnosticAt(source, where, `YAML read ${text} as a mapping, not text: quote the value, e.g. "${text.replace(/"/g, '\\"')}"`));
    };
    hint([...path, 'url'], request.url);
    hint([...path, 'method'], request.method);
    if (isObject(request.headers)) for (const [name, v] of Object.entries(request.headers)) hint([...path, 'headers', name], v);
  }
  // In a body or mapping a nested mapping is legitimate; `{x}` — a flow mapping with a key and no value at
  // all (not even `: null`) — is an expression YAML took for a mapping: it would send {"x": null}.
  const flowKeysWithoutValue = (path: KeyPath, node: Node | null | undefined) => {
    if (!isMap(node)) return;
    if (node.flow && node.items.some((p) => p.value === null)) {
      const written = node.items.map((p) => (isScalar(p.key) ? String(p.key.value) : '?') + (p.value === null ? '' : ': …')).join(', ');
      const lone = node.items.length === 1 && isScalar(node.items[0]!.key) ? String(node.items[0]!.key.value) : undefined;
      const fix = lone !== undefined ? `for the expression, quote it: ${JSON.stringify(lone)}` : `quote the value, e.g. "${`{${written}}`.replace(/"/g, '\\"')}"`;
      out.push(diagnosticAt(source, path, `YAML read {${written}} as a mapping whose key has no value, not text: it would be sent as {${JSON.stringify(lone ?? written)}: null}; ${fix}`));
      return;
    }
    for (const p of node.items) if (isScalar(p.key)) flowKeysWithoutValue([...path, String(p.key.value)], p.value as Node | null);
  };
  for (const path of mappingPaths(spec)) flowKeysWithoutValue(path, nodeAt(source, path));
  return out;
}

/** Where a spec holds mappings (bodies, batch item and envelope, preset fields), for the paths that exist. */
function mappingPaths(spec: Record<string, unknown>): KeyPath[] {
  const out: KeyPath[] = requests(spec as Partial<IntegrationSpec>).map(({ path }) => [...path, 'body']);
  const send = spec.send;
  if (isObject(send) && isObject(send.batch)) out.push(['send', 'batch', 'item'], ['send', 'batch', 'body']);
  if (isObject(spec.presets)) {
    for (const [name, preset] of Object.entries(spec.presets)) {
      if (isObject(preset) && isObject(preset.events)) for (const event of Object.keys(preset.events)) out.push(['presets', name, 'events', event, 'fields']);
    }
  }
  return out;
}

/** The scheme of a URL template, and its literal host (or the literal suffix after leading placeholders) when known at load time. */
function literalHost(url: string): { scheme: string | undefined; host: string | undefined; written?: string; templated?: boolean; port?: number } {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (!m) return { scheme: undefined, host: undefined };
  const rest = url.slice(m[0].length);
  // The authority ends at the first '/', '?' or '#' outside a placeholder.
  let depth = 0;
  let end = rest.length;
  for (let i = 0; i < rest.length; i++) {
    const ch = rest[i];
    if (ch === '{') depth++;
    else if (ch === '}') depth = Math.max(0, depth - 1);
    else if (depth === 0 && (ch === '/' || ch === '?' || ch === '#')) {
      end = i;
      break;
    }
  }
  const authority = rest.slice(0, end).replace(/^[^@]*@/, '');
  const hostPart = authority.replace(/:\d+$/, '').replace(/:\{[^}]*\}$/, '');
  const portText = /:(\d+)$/.exec(authority)?.[1];
  // Split on dots outside placeholders ({$config.tenant} is one label's worth of text).
  const labels: string[] = [''];
  depth = 0;
  for (const ch of hostPart) {
    if (ch === '{') depth++;
    else if (ch === '}') depth = Math.max(0, depth - 1);
    if (ch === '.' && depth === 0) labels.push('');
    else labels[labels.length - 1] += ch;
  }
  // Only a fully literal host, or placeholders leading a literal suffix ({$config.tenant}.rest.example.com),
  // can be judged at load time; anything else (mc-{x}, a.{x}.com, a whole-host expression) is left to
  // the run-time check.
  const firstLiteral = labels.findIndex((l) => !l.startsWith('{'));
  if (firstLiteral < 0 || labels.slice(firstLiteral).some((l) => l.includes('{')) || labels.slice(0, firstLiteral).some((l) => !/^\{[^{}]*\}$/.test(l))) {
    return { scheme: m[1], host: undefined };
  }
  return { scheme: m[1], host: labels.slice(firstLiteral).join('.'), written: authority, ...(firstLiteral > 0 ? { templated: true } : {}), ...(portText ? { port: Number(portText) } : {}) };
}

/**
 * Whether any value of the leading placeholders could make the host allowed. A placeholder may render
 * one label or several, so `{x}.S` can match an exact host ending in `.S`, or `*.T` where T is S or
 * ends in `.S`.
 */
function couldBeAllowed(suffix: string, templated: boolean, allowed: readonly string[], port: number | undefined, defaultPort: number): boolean {
  // A literal host is judged with its port; after placeholders, by its host only (the port is checked when the request is made).
  if (!templated) return hostAllowed(suffix, allowed, port, defaultPort);
  const hosts = allowed.map((a) => splitHostEntry(a).host);
  const s = suffix.toLowerCase().replace(/\.$/, '');
  return hosts.some((raw) => {
    const p = raw.toLowerCase().replace(/\.$/, '');
    const t = p.startsWith('*.') ? p.slice(2) : p;
    if (t.includes('*')) return false;
    return (p.startsWith('*.') && t === s) || t.endsWith(`.${s}`);
  });
}

/**
 * Checks on the spec as the engine will run it. Run beside the schema and the compiler, so it reads a
 * value of any shape: what is not where it belongs is the schema's to report.
 */
export function lintSpec(source: SpecSource): Diagnostic[] {
  if (!isObject(source.value)) return [];
  const spec = source.value as unknown as IntegrationSpec;
  const out: Diagnostic[] = [];
  const allowed = Array.isArray(spec.allowed_hosts) ? spec.allowed_hosts.filter((h): h is string => typeof h === 'string') : [];
  for (const { path, request } of requests(spec)) {
    const url = request.url;
    if (typeof url !== 'string' || url.startsWith('{')) continue; // the whole URL comes from an expression
    const { scheme, host, written, templated, port } = literalHost(url);
    if (scheme === undefined) {
      out.push(diagnosticAt(source, [...path, 'url'], `the URL has no scheme: write https://${url.replace(/^\/+/, '')} (requests go to absolute http(s) URLs)`));
      continue;
    }
    if (!['http', 'https'].includes(scheme.toLowerCase())) {
      out.push(diagnosticAt(source, [...path, 'url'], `the URL's scheme is ${scheme}: requests are sent over http(s) only`));
      continue;
    }
    const defaultPort = scheme.toLowerCase() === 'https' ? 443 : 80;
    if (host !== undefined && !couldBeAllowed(host, templated === true, allowed, port === defaultPort ? undefined : port, defaultPort)) {
      out.push(
        diagnosticAt(
          source,
          [...path, 'url'],
          `host ${written ?? host} is not in allowed_hosts (${allowed.join(', ') || 'none'}): every request to it would fail with host_not_allowed; add it to allowed_hosts or fix the URL`,
        ),
      );
    }
  }
  // Bodies whose input is the event: a bare name reads a top-level event field.
  const eventBodies: { path: KeyPath; mapping: unknown }[] = [];
  if (isObject(spec.send) && isObject(spec.send.request) && spec.send.request.body !== undefined) eventBodies.push({ path: ['send', 'request', 'body'], mapping: spec.send.request.body });
  for (const [name, preset] of Object.entries(isObject(spec.presets) ? spec.presets : {})) {
    if (!isObject(preset) || !isObject(preset.events)) continue;
    for (const [event, e] of Object.entries(preset.events)) if (isObject(e) && e.fields) eventBodies.push({ path: ['presets', name, 'events', event, 'fields'], mapping: e.fields });
  }
  const visit = (path: KeyPath, m: Mapping | Mapping[string] | unknown) => {
    if (typeof m === 'string') {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(m) || EVENT_FIELDS.has(m)) return;
      const near = closest(m, EVENT_FIELDS);
      const alt = near ? `; if you meant the event's ${near}, write ${near}` : `; if the event really has a top-level '${m}', write $event.${m}`;
      out.push(diagnosticAt(source, path, `'${m}' reads the event's top-level field '${m}', which Signal events do not have: for the constant string write '"${m}"'${alt}`));
      return;
    }
    if (isObject(m)) for (const [k, v] of Object.entries(m)) if (k !== SPREAD_KEY) visit([...path, k], v);
  };
  for (const { path, mapping } of eventBodies) visit(path, mapping);
  return out;
}
