/**
 * The auth chain: run each auth stage (or take its result from the shared token cache), and send a
 * request that needs those results, dropping and fetching the tokens again once when a rule says `reauth`.
 *
 * A chain of stages (a token exchanged for another) recovers as a chain: when a later stage is refused
 * with a `reauth` rule (the earlier token went stale), the earlier stages' cached results are dropped and
 * the chain runs again, once. An earlier stage is only fetched when a later one must be, or when the
 * send request reads it itself: a valid later token does not need a fresh earlier one.
 */
import { DeliveryError, REASONS } from '../errors.js';
import { evaluateMapping } from '../compile/mapping.js';
import type { CompiledAuthStage } from '../compile/spec.js';
import type { AuthResults, Config, IntegrationContext } from './context.js';
import { exchange, type ExchangeOptions, type ExchangeResult, type RequestForRetry, type WireRequest } from './http.js';
import { applyClientAuth, checkHost, renderRequest, value } from './requests.js';
import { cancelOnAbort, forget } from './abort-fanout.js';
import type { CachedToken } from '../store/types.js';
import type { AttemptDetail } from './outcome.js';
import { tokenTypeMatches } from '../policy/client-auth.js';

/**
 * The HTTP attempts each auth fetch made, by what it produced (the token's value, or the error it threw),
 * stamped with a sequence number: a delivery that asked for a token at sequence `n` and got a result
 * stamped after `n` made or joined that fetch, and records its attempts (stage `auth`); one answered from
 * the cache, or from a remembered failure, did not.
 */
const fetched = new WeakMap<object, { seq: number; attempts: AttemptDetail[] }>();
let fetchSeq = 0;

function stamp<T extends object>(what: T, attempts: AttemptDetail[]): T {
  fetched.set(what, { seq: ++fetchSeq, attempts });
  return what;
}

function takeAttempts(what: unknown, since: number, sink: AttemptDetail[] | undefined): void {
  if (!sink || typeof what !== 'object' || what === null) return;
  const f = fetched.get(what);
  if (f && f.seq > since) for (const a of f.attempts) sink.push({ ...a });
}

/** A later stage was refused by a `reauth` rule: the earlier stages' results must be fetched again. */
class ChainStale extends DeliveryError {}

async function runAuthStage(ctx: IntegrationContext, stage: CompiledAuthStage, config: Config, prior: AuthResults): Promise<{ value: Record<string, unknown>; lifetime_s: number }> {
  const bindings = { config, auth: prior };
  let body = stage.request.body ? await evaluateMapping(stage.request.body, undefined, bindings) : undefined;
  const client = stage.clientAuth ? await applyClientAuth(stage, bindings, body, false) : undefined;
  if (client) {
    body = client.body;
    // The encoded forms are secrets too (a vendor may echo the header or the form back).
    for (const s of client.secrets) ctx.rememberSecret(s);
  }
  const wire = await renderRequest(`auth.${stage.name}`, stage.request, undefined, bindings, body);
  if (client?.authorization) wire.headers['Authorization'] = client.authorization;
  checkHost(wire.stage, wire.url, ctx.spec.allowedHosts);
  // Shared by every delivery waiting for it: only the engine (shutdown, close) aborts it, never one caller.
  const link = ctx.lifecycle.signal();
  let res;
  try {
    res = await exchange(ctx.client, ctx.route(wire), ctx.exchangeOptions(stage.rules, stage.vendorError, stage.success, { config }, link.signal));
  } finally {
    link.release();
  }
  const attempts: AttemptDetail[] = res.attempts.map((a) => ({ ...a, stage: 'auth', auth_stage: stage.name }));
  try {
    const r = await answered(ctx, stage, config, res);
    stamp(r.value, attempts); // the very object the token cache keeps as the entry's value
    return r;
  } catch (e) {
    throw typeof e === 'object' && e !== null ? stamp(e, attempts) : e;
  }
}

/** The stage's results from its answer, or the error it ends with. */
async function answered(ctx: IntegrationContext, stage: CompiledAuthStage, config: Config, res: ExchangeResult): Promise<{ value: Record<string, unknown>; lifetime_s: number }> {
  if (res.error) throw res.error;
  if (res.aborted) throw new DeliveryError(REASONS.interrupted, `auth stage '${stage.name}' was interrupted`, { retryable: true });
  if (res.status === undefined || !stage.success(res.status)) {
    const e = ctx.failure(REASONS.auth, `auth stage '${stage.name}' failed`, res);
    if (res.rule?.action === 'reauth') {
      throw new ChainStale(e.code, e.message, {
        retryable: true,
        ...(e.hint ? { hint: e.hint } : {}),
        ...(e.http_status !== undefined ? { http_status: e.http_status } : {}),
        ...(e.vendor_code !== undefined ? { vendor_code: e.vendor_code } : {}),
        ...(e.vendor_message ? { vendor_message: e.vendor_message } : {}),
      });
    }
    throw e;
  }
  if (stage.tokenType !== undefined) {
    const stated = (res.json as { token_type?: unknown } | undefined)?.token_type;
    if (!tokenTypeMatches(stated, stage.tokenType)) {
      const said = typeof stated === 'string' ? `token_type '${stated.slice(0, 40)}'` : 'no token_type';
      throw new DeliveryError(REASONS.auth, `auth stage '${stage.name}' answered ${res.status} with ${said}, not '${stage.tokenType}'`, {
        retryable: false,
        http_status: res.status,
        hint: `The token endpoint issued a token of another type than the spec's token_type (${stage.tokenType}); asking again gets the same kind. Check the client's token settings at the authorization server.`,
      });
    }
  }
  const out: Record<string, unknown> = {};
  for (const r of stage.result) {
    const v = await value(r.expr, res.json, { config });
    if (v === undefined || v === null || v === '') {
      throw new DeliveryError(REASONS.auth, `auth stage '${stage.name}' answered ${res.status} without '${r.name}'`, { retryable: true, http_status: res.status });
    }
    out[r.name] = v;
  }
  const stated = stage.expiresIn ? await value(stage.expiresIn, res.json, { config }) : undefined;
  const lifetime = stated === undefined || stated === null || stated === '' ? NaN : Number(stated);
  return { value: out, lifetime_s: Number.isFinite(lifetime) && lifetime > 0 ? lifetime : stage.defaultExpiresIn };
}

type Used = readonly (CachedToken<Record<string, unknown>> | undefined)[];
/** Every auth stage's results, and the cache entry each came from (`used[i]` is stage i's). */
export interface Authenticated {
  results: AuthResults;
  used: Used;
}

/** Results of every auth stage, from the shared cache or one shared fetch per stage; `used[i]` is stage i's entry. */
export async function authenticate(ctx: IntegrationContext, config: Config, sink?: AttemptDetail[]): Promise<Authenticated> {
  try {
    return await authenticateOnce(ctx, config, false, sink);
  } catch (e) {
    if (!(e instanceof ChainStale)) throw e;
    // Dropped in authenticateOnce; the chain runs again from its first stage, once.
    try {
      return await authenticateOnce(ctx, config, true, sink);
    } catch (e2) {
      if (e2 instanceof ChainStale) {
        throw new DeliveryError(e2.code, `${e2.message} (again after the auth chain ran again)`, {
          retryable: true,
          ...(e2.hint ? { hint: e2.hint } : {}),
          ...(e2.http_status !== undefined ? { http_status: e2.http_status } : {}),
          ...(e2.vendor_code !== undefined ? { vendor_code: e2.vendor_code } : {}),
          ...(e2.vendor_message ? { vendor_message: e2.vendor_message } : {}),
        });
      }
      throw e2;
    }
  }
}

async function authenticateOnce(ctx: IntegrationContext, config: Config, whole: boolean, sink: AttemptDetail[] | undefined): Promise<Authenticated> {
  const stages = ctx.spec.auth;
  const { tokens } = ctx.deps;
  // Which stages must be valid now: the last; one the send reads itself; every stage before one that must be fetched.
  const needed = stages.map((s, i) => whole || s.readBySend || i === stages.length - 1);
  for (let i = stages.length - 1; i > 0; i--) {
    if (needed[i] && !tokens.peek(ctx.authKeys[i]!)) needed.fill(true, 0, i);
  }
  const results: AuthResults = {};
  const used: (CachedToken<Record<string, unknown>> | undefined)[] = [];
  for (const [i, stage] of stages.entries()) {
    let entry: CachedToken<Record<string, unknown>> | undefined;
    if (needed[i]) {
      const prior = { ...results };
      const since = fetchSeq;
      try {
        entry = await tokens.get(
          ctx.authKeys[i]!,
          () => runAuthStage(ctx, stage, config, prior),
          (e) => e instanceof DeliveryError && !e.retryable,
        );
        takeAttempts(entry.value, since, sink);
      } catch (e) {
        takeAttempts(e, since, sink);
        if (e instanceof ChainStale && !whole) {
          // The earlier results this stage was given are stale: drop them (unless another delivery already did).
          await Promise.all(used.slice(0, i).map((u, j) => tokens.invalidate(ctx.authKeys[j]!, u)));
        }
        throw e;
      }
    } else {
      entry = tokens.peek(ctx.authKeys[i]!);
    }
    used.push(entry);
    if (!entry) continue;
    results[stage.name] = entry.value;
    for (const [k, v] of Object.entries(entry.value)) if (!stage.publicOutputs.has(k)) ctx.rememberSecret(v);
  }
  return { results, used };
}

/**
 * The auth results from the cache, synchronously, when every stage the request needs holds a valid token
 * (the usual case: no promise and no objects per event — the same results object while the same tokens
 * are cached); otherwise `authenticate`. The same stages are read as `authenticate` reads them.
 */
export function authenticateNow(ctx: IntegrationContext, config: Config, sink?: AttemptDetail[]): Authenticated | Promise<Authenticated> {
  const stages = ctx.spec.auth;
  const { tokens } = ctx.deps;
  const memo = ctx.authMemo;
  let same = memo !== undefined;
  for (let i = 0; i < stages.length; i++) {
    const entry = tokens.peek(ctx.authKeys[i]!);
    if (!entry && (stages[i]!.readBySend || i === stages.length - 1)) return authenticate(ctx, config, sink);
    if (same && memo!.used[i] !== entry) same = false;
  }
  if (same) return memo!;
  const results: AuthResults = {};
  const used: (CachedToken<Record<string, unknown>> | undefined)[] = [];
  for (let i = 0; i < stages.length; i++) {
    const stage = stages[i]!;
    const entry = tokens.peek(ctx.authKeys[i]!);
    used.push(entry);
    if (!entry) continue;
    results[stage.name] = entry.value;
    for (const [k, v] of Object.entries(entry.value)) if (!stage.publicOutputs.has(k)) ctx.rememberSecret(v);
  }
  ctx.authMemo = { results, used };
  return ctx.authMemo;
}

/**
 * Send a request that needs auth: on a `reauth` rule the tokens it used are dropped and fetched again,
 * once. Every retry re-renders the whole request (URL and headers) from the current auth results.
 */
export function sendWithAuth(
  ctx: IntegrationContext,
  wireFor: (auth: AuthResults) => WireRequest | Promise<WireRequest>,
  opts: ExchangeOptions,
  sink?: AttemptDetail[],
): Promise<{ res: ExchangeResult; auth: AuthResults }> {
  const go = (first: Authenticated) => {
    const sending = startSend(ctx, wireFor, opts, first, sink);
    return sending.res.then((res) => ({ res, auth: sending.auth.results }));
  };
  try {
    const now = authenticateNow(ctx, ctx.config, sink);
    return now instanceof Promise ? now.then(go) : go(now);
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * `sendWithAuth` for a caller that needs only the exchange's result (the single send): no promise layer of
 * its own. A delivery that has to wait for a token stops waiting when its signal aborts (nothing sent).
 */
export function sendWithAuthResult(
  ctx: IntegrationContext,
  wireFor: (auth: AuthResults) => WireRequest | Promise<WireRequest>,
  opts: ExchangeOptions,
  sink?: AttemptDetail[],
): Promise<ExchangeResult> {
  try {
    const now = authenticateNow(ctx, ctx.config, sink);
    return now instanceof Promise
      ? authUnlessAborted(now, opts.signal).then((a) => (a ? startSend(ctx, wireFor, opts, a, sink).res : abortedBeforeSending()))
      : startSend(ctx, wireFor, opts, now, sink).res;
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * The auth results, or undefined as soon as `signal` aborts: a delivery waiting for a token (another
 * delivery's request, or another process's through the shared store) is given up at once, as a delivery
 * waiting on the rate limit or a response is. The token request itself goes on for the others (only the
 * engine's shutdown aborts it). No listener per waiting delivery on the signal (see cancelOnAbort).
 */
function authUnlessAborted(pending: Promise<Authenticated>, signal: AbortSignal | undefined): Promise<Authenticated | undefined> {
  if (!signal) return pending;
  return new Promise((resolve, reject) => {
    const waiter = { cancel: () => resolve(undefined) };
    cancelOnAbort(signal, waiter);
    pending.then(
      (a) => {
        forget(signal, waiter);
        resolve(a);
      },
      (e: unknown) => {
        forget(signal, waiter);
        reject(e);
      },
    );
  });
}

/** The exchange's result for a delivery aborted before its request went out. */
function abortedBeforeSending(): ExchangeResult {
  return { attempts: [], possibly_duplicated: false, aborted: true };
}

function routedWire(ctx: IntegrationContext, wireFor: (auth: AuthResults) => WireRequest | Promise<WireRequest>, results: AuthResults): WireRequest | Promise<WireRequest> {
  const wire = wireFor(results);
  return wire instanceof Promise ? wire.then((w) => checkedAndRouted(ctx, w)) : checkedAndRouted(ctx, wire);
}

function checkedAndRouted(ctx: IntegrationContext, wire: WireRequest): WireRequest {
  checkHost(wire.stage, wire.url, ctx.spec.allowedHosts);
  return ctx.route(wire);
}

/** Render, check and send; `auth` follows a retry's fresh tokens. Throws when the first request cannot be rendered. */
function startSend(
  ctx: IntegrationContext,
  wireFor: (auth: AuthResults) => WireRequest | Promise<WireRequest>,
  opts: ExchangeOptions,
  first: Authenticated,
  sink: AttemptDetail[] | undefined,
): { res: Promise<ExchangeResult>; auth: Authenticated } {
  const sending = { res: undefined as unknown as Promise<ExchangeResult>, auth: first };
  const retryRequest: RequestForRetry | undefined = ctx.spec.auth.length
    ? async (reauth: boolean) => {
        // Drop the tokens the failed attempt sent (unless another delivery already replaced them): the last
        // stage's and any the request reads itself. An earlier stage is dropped only when its own successor
        // is refused (its `reauth` rule), so a chain re-runs no further back than it must.
        const last = ctx.spec.auth.length - 1;
        if (reauth) {
          const used = sending.auth.used;
          await Promise.all(used.map((entry, i) => (entry && (i === last || ctx.spec.auth[i]!.readBySend) ? ctx.deps.tokens.invalidate(ctx.authKeys[i]!, entry) : undefined)));
        }
        sending.auth = await authenticate(ctx, ctx.config, sink);
        const again = await routedWire(ctx, wireFor, sending.auth.results);
        return { url: again.url, headers: again.headers };
      }
    : undefined;
  // Synchronous when the request renders synchronously: no promise of its own per event.
  const wire = routedWire(ctx, wireFor, first.results);
  sending.res = wire instanceof Promise ? wire.then((w) => exchange(ctx.client, w, opts, retryRequest)) : exchange(ctx.client, wire, opts, retryRequest);
  return sending;
}
