/**
 * Preview: what `deliver` would do with one event — skip it (the same gate, gate.ts) or send these exact
 * requests, secrets and tokens redacted; sends nothing.
 */
import { DeliveryError, REASONS } from '../errors.js';
import { evaluateMapping } from '../compile/mapping.js';
import { REDACTED } from '../policy/redact.js';
import type { AuthResults, Config, IntegrationContext } from './context.js';
import { eventProblems, type SignalEvent } from './event.js';
import { skipOf, type Skip } from './gate.js';
import type { WireRequest } from './http.js';
import { applyClientAuth, checkHost, renderRequest } from './requests.js';
import { groupOf } from './batch-send.js';

export interface PreviewRequest {
  stage: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  /** The body exactly as it would go on the wire (secrets redacted), or null. */
  body: string | null;
}

/** Skipped as `deliver` would skip it (reason and message as its outcome has them), or the requests it would send. */
export type Preview = Omit<Skip, 'attempts'> | { status: 'would_send'; requests: PreviewRequest[] };

export async function previewEvent(ctx: IntegrationContext, raw: unknown): Promise<Preview> {
  const problems = eventProblems(raw);
  if (problems.length) throw new DeliveryError(REASONS.invalidEvent, problems.join('; '));
  const event = raw as SignalEvent;
  const skip = skipOf(ctx.checked, event);
  if (skip) return { status: 'skipped', reason: skip.reason, message: skip.message };
  return { status: 'would_send', requests: await previewRequests(ctx, event) };
}

async function previewRequests(ctx: IntegrationContext, event: SignalEvent): Promise<PreviewRequest[]> {
  const spec = ctx.spec;
  const config: Config = { ...ctx.config };
  for (const f of spec.secretFields) if (config[f] !== undefined) config[f] = REDACTED;
  const out: PreviewRequest[] = [];
  const push = (w: WireRequest) => {
    // A URL that starts with a stand-in for an auth result never fetched (`[access.instance_url]/...`) is
    // shown as it is; every other URL is refused exactly as deliver refuses it, then routed.
    const standIn = w.url.startsWith('[');
    if (!standIn) checkHost(w.stage, w.url, ctx.spec.allowedHosts);
    const r = standIn ? w : ctx.route(w);
    out.push({ stage: r.stage, method: r.method, url: r.url, headers: r.headers, body: r.body ?? null });
  };
  const auth: AuthResults = {};
  for (const stage of spec.auth) {
    const bindings = { config, auth: { ...auth } };
    let body = stage.request.body ? await evaluateMapping(stage.request.body, undefined, bindings) : undefined;
    const client = stage.clientAuth ? await applyClientAuth(stage, bindings, body, true) : undefined;
    if (client) body = client.body;
    const wire = await renderRequest(`auth.${stage.name}`, stage.request, undefined, bindings, body, true);
    if (client?.authorization) wire.headers['Authorization'] = client.authorization;
    push(wire);
    // Secrets read [redacted]; a public output (never fetched by a preview) is named where it goes.
    auth[stage.name] = Object.fromEntries(stage.result.map((r) => [r.name, stage.publicOutputs.has(r.name) ? `[${stage.name}.${r.name}]` : REDACTED]));
  }
  const { body, fields } = await ctx.buildBody(event, config);
  const batch = spec.send.batch;
  if (batch) {
    // A batch of one: the request this event would travel in if it were alone.
    const item = batch.item ? await evaluateMapping(batch.item, body, { config, event, fields }) : body;
    const group = await groupOf(batch.groupBy, event, { config, event, fields });
    const envelope = await evaluateMapping(batch.body, undefined, { config, items: [item], ...(group !== undefined ? { group } : {}) });
    push(await renderRequest('send', spec.send.request, undefined, { config, auth }, envelope, true));
  } else {
    push(await renderRequest('send', spec.send.request, event, { config, event, fields, auth }, body, true));
  }
  return out;
}
