/**
 * An event's body, built exactly as `deliver` and `preview` build it: the preset's field mapping, the
 * send body, the integration's field overrides, then the send stage's checks. One synchronous call
 * whenever every expression answers synchronously (the compiled JSONata subset); from the first
 * expression that needs the interpreter on, the rest continues in a promise chain, in the same order.
 */
import { DeliveryError, REASONS } from '../errors.js';
import type { Bindings } from '../compile/expression.js';
import { FUSE_BAIL, fuseBody, type FusedBuilder } from '../compile/fuse.js';
import { evaluateMapping, setPath } from '../compile/mapping.js';
import type { CompiledSpec } from '../compile/spec.js';
import type { CheckedRecord } from '../validate/record.js';
import type { SignalEvent } from './event.js';

export type MaybePromise<T> = T | Promise<T>;
export interface BuiltBody {
  body: unknown;
  fields: Record<string, unknown>;
}

type Send = CompiledSpec['send'];
type Checked = Pick<CheckedRecord, 'presetEvents' | 'overrides'>;
type Fields = Record<string, unknown>;

export type BodyBuilder = (event: SignalEvent, config: Record<string, unknown>) => MaybePromise<BuiltBody>;

/**
 * The body builder of one integration (its spec's send stage and its checked record). Each preset
 * event's field mapping and the send body are fused into one generated function (compile/fuse.ts),
 * made on the event's first use and kept by event name; events outside the preset share one.
 */
export function bodyBuilder(send: Send, checked: Checked): BodyBuilder {
  // Checks run inside the fused function unless overrides must change the body first.
  const checks = checked.overrides.length === 0 && send.checks.length ? { exprs: send.checks.map((c) => c.that), fail: (i: number) => failUnlessTrue(send.checks[i]!, false) as never } : undefined;
  const byEvent = new Map<string, FusedBuilder | null>(); // preset event names only: bounded
  let noFields: FusedBuilder | null | undefined;
  return (event, config) => {
    let fused = byEvent.get(event.event);
    if (fused === undefined) {
      const mapping = checked.presetEvents?.events.get(event.event);
      if (mapping) byEvent.set(event.event, (fused = fuseBody(mapping, send.request.body, checks) ?? null));
      else fused = noFields === undefined ? (noFields = fuseBody(undefined, send.request.body, checks) ?? null) : noFields;
    }
    if (fused) {
      const r = fused(event, config);
      if (r !== FUSE_BAIL) return checked.overrides.length ? afterBody(send, checked, event, r.bindings, r.fields, r.body) : r; // r is { body, fields, bindings }
    }
    return buildEventBody(send, checked, event, config);
  };
}

/** The reference: the field mapping, then the body, overrides and checks, each evaluated on its own. */
export function buildEventBody(send: Send, checked: Checked, event: SignalEvent, config: Record<string, unknown>): MaybePromise<BuiltBody> {
  const mapping = checked.presetEvents?.events.get(event.event);
  const fields = mapping ? (evaluateMapping(mapping, event, { config, event }) as MaybePromise<Fields>) : {};
  if (fields instanceof Promise) return fields.then((f) => withFields(send, checked, event, config, f));
  return withFields(send, checked, event, config, fields);
}

function withFields(send: Send, checked: Checked, event: SignalEvent, config: Record<string, unknown>, fields: Fields): MaybePromise<BuiltBody> {
  const b: Bindings = { config, event, fields };
  const body = send.request.body ? evaluateMapping(send.request.body, event, b) : undefined;
  if (body instanceof Promise) return body.then((r) => afterBody(send, checked, event, b, fields, r));
  return afterBody(send, checked, event, b, fields, body);
}

function afterBody(send: Send, checked: Checked, event: SignalEvent, b: Bindings, fields: Fields, body: unknown): MaybePromise<BuiltBody> {
  const final = checked.overrides.length ? applyOverrides(checked.overrides, 0, body ?? {}, event, b) : body;
  if (final instanceof Promise) return final.then((r) => afterOverrides(send, b, fields, r));
  return afterOverrides(send, b, fields, final);
}

function afterOverrides(send: Send, b: Bindings, fields: Fields, body: unknown): MaybePromise<BuiltBody> {
  const checked = send.checks.length ? runChecks(send.checks, 0, body, b) : undefined;
  if (checked instanceof Promise) return checked.then(() => ({ body, fields }));
  return { body, fields };
}

function applyOverrides(overrides: CheckedRecord['overrides'], from: number, target: unknown, event: SignalEvent, b: Bindings): MaybePromise<unknown> {
  for (let i = from; i < overrides.length; i++) {
    const o = overrides[i]!;
    const v = o.expr ? o.expr.evaluate(event, b) : undefined;
    if (v instanceof Promise) {
      return v.then((r: unknown) => {
        setPath(target as Record<string, unknown>, o.path, r);
        return applyOverrides(overrides, i + 1, target, event, b);
      });
    }
    setPath(target as Record<string, unknown>, o.path, v);
  }
  return target;
}

function runChecks(checks: Send['checks'], from: number, body: unknown, b: Bindings): MaybePromise<void> {
  for (let i = from; i < checks.length; i++) {
    const check = checks[i]!;
    const v = check.that.evaluate(body, b);
    if (v instanceof Promise) {
      return v.then((r: unknown) => {
        failUnlessTrue(check, r);
        return runChecks(checks, i + 1, body, b);
      });
    }
    failUnlessTrue(check, v);
  }
}

function failUnlessTrue(check: Send['checks'][number], v: unknown): void {
  if (v !== true) throw new DeliveryError(REASONS.check, check.message, { retryable: false, ...(check.hint ? { hint: check.hint } : {}) });
}
