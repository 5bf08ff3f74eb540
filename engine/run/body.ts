/**
 * An event's body, built exactly as `deliver` and `preview` build it: the preset's field mapping, the
 * send body, the integration's field overrides, then the send stage's checks. One synchronous call
 * whenever every expression answers synchronously (the compiled JSONata subset); from the first
 * expression that needs the interpreter on, the rest continues in a promise chain, in the same order.
 */
import { DeliveryError, REASONS } from '../errors.js';
import type { Bindings } from '../compile/expression.js';
import { evaluateMapping, setPath } from '../compile/mapping.js';
import type { CompiledSpec } from '../compile/spec.js';
import type { CheckedRecord } from '../validate/record.js';
import type { SignalEvent } from './event.js';

export type MaybePromise<T> = T | Promise<T>;
export interface BuiltBody {
  body: unknown;
  fields: Record<string, unknown>;
}

function then<T, R>(v: MaybePromise<T>, f: (v: T) => MaybePromise<R>): MaybePromise<R> {
  return v instanceof Promise ? v.then(f) : f(v);
}

export function buildEventBody(send: CompiledSpec['send'], checked: Pick<CheckedRecord, 'presetEvents' | 'overrides'>, event: SignalEvent, config: Record<string, unknown>): MaybePromise<BuiltBody> {
  const mapping = checked.presetEvents?.events.get(event.event);
  const fields = mapping ? (evaluateMapping(mapping, event, { config, event }) as MaybePromise<Record<string, unknown>>) : {};
  return then(fields, (f) => {
    const b: Bindings = { config, event, fields: f };
    const body = send.request.body ? evaluateMapping(send.request.body, event, b) : undefined;
    return then(body, (built) => then(applyOverrides(checked.overrides, 0, built, event, b), (final) => then(runChecks(send.checks, 0, final, b), () => ({ body: final, fields: f }))));
  });
}

function applyOverrides(overrides: CheckedRecord['overrides'], from: number, body: unknown, event: SignalEvent, b: Bindings): MaybePromise<unknown> {
  if (from >= overrides.length) return body;
  const target = (body ?? {}) as Record<string, unknown>;
  for (let i = from; i < overrides.length; i++) {
    const o = overrides[i]!;
    const v = o.expr ? o.expr.evaluate(event, b) : undefined;
    if (v instanceof Promise) {
      return v.then((r: unknown) => {
        setPath(target, o.path, r);
        return applyOverrides(overrides, i + 1, target, event, b);
      });
    }
    setPath(target, o.path, v);
  }
  return target;
}

function runChecks(checks: CompiledSpec['send']['checks'], from: number, body: unknown, b: Bindings): MaybePromise<void> {
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

function failUnlessTrue(check: CompiledSpec['send']['checks'][number], v: unknown): void {
  if (v !== true) throw new DeliveryError(REASONS.check, check.message, { retryable: false, ...(check.hint ? { hint: check.hint } : {}) });
}
