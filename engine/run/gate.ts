/**
 * Whether an integration takes an event at all: the record is enabled, the event is one it forwards, and
 * every consent category the record requires is granted. One function, used by `deliver` and by
 * `preview` (and so by pins and the playground): what an author previews is what delivery does.
 */
import { REASONS, type Reason } from '../errors.js';
import type { CheckedRecord } from '../validate/record.js';
import type { SignalEvent } from './event.js';

export interface Skip {
  status: 'skipped';
  reason: Reason;
  message: string;
  attempts: 0;
}

/** The skip `deliver` answers for this (valid) event, or undefined when the event goes on to be sent. */
export function skipOf(checked: CheckedRecord, event: SignalEvent): Skip | undefined {
  if (!checked.record.enabled) return { status: 'skipped', reason: REASONS.disabled, message: 'the integration is disabled', attempts: 0 };
  if (checked.forwarded && !checked.forwarded.has(event.event)) {
    return { status: 'skipped', reason: REASONS.notForwarded, message: `'${event.event}' is not an event this integration forwards`, attempts: 0 };
  }
  const missing = checked.consent.length ? checked.consent.filter((c) => event.consent?.[c] !== true) : checked.consent;
  if (missing.length) return { status: 'skipped', reason: REASONS.consent, message: `consent not granted for: ${missing.join(', ')}`, attempts: 0 };
  return undefined;
}
