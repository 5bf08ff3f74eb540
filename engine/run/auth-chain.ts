/**
 * The auth chain: run each auth stage (or take its result from the shared token cache), and send a
 * request that needs those results, dropping and fetching the tokens again once when a rule says `reauth`.
 */
import { DeliveryError, REASONS } from '../errors.js';
import { evaluateMapping } from '../compile/mapping.js';
import type { CompiledAuthStage } from '../compile/spec.js';
import type { AuthResults, Config, IntegrationContext } from './context.js';
import { exchange, type ExchangeOptions, type ExchangeResult, type WireRequest } from './http.js';
import { checkHost, renderRequest, value } from './requests.js';
import type { CachedToken } from '../store/types.js';

async function runAuthStage(ctx: IntegrationContext, stage: CompiledAuthStage, config: Config, prior: AuthResults): Promise<{ value: Record<string, unknown>; lifetime_s: number }> {
  const bindings = { config, auth: prior };
  const body = stage.request.body ? await evaluateMapping(stage.request.body, undefined, bindings) : undefined;
  const wire = await renderRequest(`auth.${stage.name}`, stage.request, undefined, bindings, body);
  checkHost(wire.stage, wire.url, ctx.spec.allowedHosts);
  // Shared by every delivery waiting for it: only the engine (shutdown, close) aborts it, never one caller.
  const link = ctx.lifecycle.signal();
  let res;
  try {
    res = await exchange(ctx.client, ctx.route(wire), { ...ctx.exchangeOptions(stage.rules, stage.vendorError, stage.success, { config }), signal: link.signal });
  } finally {
    link.release();
  }
  if (res.error) throw res.error;
  if (res.aborted) throw new DeliveryError(REASONS.interrupted, `auth stage '${stage.name}' was interrupted`, { retryable: true });
  if (res.status === undefined || !stage.success(res.status)) throw ctx.failure(REASONS.auth, `auth stage '${stage.name}' failed`, res);
  const out: Record<string, unknown> = {};
  for (const r of stage.result) {
    const v = await value(r.expr, res.json, { config });
    if (v === undefined || v === null || v === '') {
      throw new DeliveryError(REASONS.auth, `auth stage '${stage.name}' answered ${res.status} without '${r.name}'`, { retryable: true, http_status: res.status });
    }
    out[r.name] = v;
  }
  const lifetime = stage.expiresIn ? Number(await value(stage.expiresIn, res.json, { config })) : stage.defaultExpiresIn;
  return { value: out, lifetime_s: Number.isFinite(lifetime) && lifetime > 0 ? lifetime : stage.defaultExpiresIn };
}

/** Results of every auth stage, from the shared cache or one shared fetch per stage. */
export async function authenticate(ctx: IntegrationContext, config: Config): Promise<{ results: AuthResults; used: CachedToken<Record<string, unknown>>[] }> {
  const results: AuthResults = {};
  const used: CachedToken<Record<string, unknown>>[] = [];
  for (const [i, stage] of ctx.spec.auth.entries()) {
    const prior = { ...results };
    const entry = await ctx.deps.tokens.get(
      ctx.authKeys[i]!,
      () => runAuthStage(ctx, stage, config, prior),
      (e) => e instanceof DeliveryError && !e.retryable,
    );
    results[stage.name] = entry.value;
    for (const v of Object.values(entry.value)) ctx.rememberSecret(v);
    used.push(entry);
  }
  return { results, used };
}

/** Send a request that needs auth: on a `reauth` rule the tokens it used are dropped and fetched again, once. */
export async function sendWithAuth(
  ctx: IntegrationContext,
  wireFor: (auth: AuthResults) => Promise<WireRequest>,
  opts: Omit<ExchangeOptions, 'headersForRetry'>,
): Promise<{ res: ExchangeResult; auth: AuthResults }> {
  const config = ctx.config;
  let { results, used } = await authenticate(ctx, config);
  const wire = await wireFor(results);
  checkHost(wire.stage, wire.url, ctx.spec.allowedHosts);
  const res = await exchange(ctx.client, ctx.route(wire), {
    ...opts,
    ...(ctx.spec.auth.length
      ? {
          headersForRetry: async (reauth: boolean) => {
            // Drop the tokens the failed attempt used (unless another delivery already replaced them).
            if (reauth) await Promise.all(used.map((entry, i) => ctx.deps.tokens.invalidate(ctx.authKeys[i]!, entry)));
            ({ results, used } = await authenticate(ctx, config));
            return (await wireFor(results)).headers;
          },
        }
      : {}),
  });
  return { res, auth: results };
}
