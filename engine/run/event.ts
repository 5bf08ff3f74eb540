/**
 * The Signal event contract (docs/events.md): the engine checks the few fields it relies on and
 * reports a clear per-event problem instead of failing inside a mapping.
 */
export interface SignalEvent {
  type: 'track' | 'identify' | 'page';
  event: string;
  event_id: string;
  timestamp?: string;
  user_id?: string | null;
  anonymous_id?: string | null;
  properties?: Record<string, unknown>;
  consent?: Record<string, boolean>;
  [key: string]: unknown;
}

import { DeliveryError, REASONS, type InputProblem } from '../errors.js';

const TYPES = new Set(['track', 'identify', 'page']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every problem with an event's shape, structured; empty when it can be delivered. */
export function eventIssues(e: unknown): InputProblem[] {
  if (!isRecord(e)) return [{ path: '', keyword: 'type', message: `an event must be a JSON object, got ${Array.isArray(e) ? 'an array' : e === null ? 'null' : typeof e}` }];
  const problems: InputProblem[] = [];
  if (typeof e.type !== 'string' || !TYPES.has(e.type)) problems.push({ path: 'type', keyword: 'enum', message: 'type must be one of track, identify, page' });
  if (typeof e.event !== 'string' || e.event.trim() === '') problems.push({ path: 'event', keyword: 'required', message: 'event (the Signal event name) is missing or empty' });
  if (typeof e.event_id !== 'string' || e.event_id.trim() === '') problems.push({ path: 'event_id', keyword: 'required', message: 'event_id is missing or empty' });
  if (e.properties !== undefined && !isRecord(e.properties)) problems.push({ path: 'properties', keyword: 'type', message: 'properties must be an object' });
  if (e.consent !== undefined && !isRecord(e.consent)) problems.push({ path: 'consent', keyword: 'type', message: 'consent must be an object of category → true/false' });
  return problems;
}

/** Every problem with an event's shape, one line each, empty when it can be delivered. */
export function eventProblems(e: unknown): string[] {
  return eventIssues(e).map((p) => p.message);
}

/**
 * Check untyped input (e.g. a parsed JSON line) against the event contract (docs/events.md): the typed
 * event, or the DeliveryError (`invalid_event`) `deliver` would fail it with, its `issues` listing every
 * problem (path, keyword, message). `deliver` runs the same check itself; this lets a caller type its
 * input, or refuse it, before handing it over.
 */
export function parseEvent(input: unknown): SignalEvent | DeliveryError {
  const issues = eventIssues(input);
  if (!issues.length) return input as SignalEvent;
  return new DeliveryError(REASONS.invalidEvent, issues.map((p) => p.message).join('; '), { retryable: false, issues });
}

export function eventIdOf(e: unknown): string | null {
  return isRecord(e) && typeof e.event_id === 'string' && e.event_id !== '' ? e.event_id : null;
}

export function eventNameOf(e: unknown): string | undefined {
  return isRecord(e) && typeof e.event === 'string' ? e.event : undefined;
}
