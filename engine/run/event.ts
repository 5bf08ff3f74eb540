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

const TYPES = new Set(['track', 'identify', 'page']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Every problem with an event's shape, empty when it can be delivered. */
export function eventProblems(e: unknown): string[] {
  if (!isRecord(e)) return [`an event must be a JSON object, got ${Array.isArray(e) ? 'an array' : e === null ? 'null' : typeof e}`];
  const problems: string[] = [];
  if (typeof e.type !== 'string' || !TYPES.has(e.type)) problems.push(`type must be one of track, identify, page`);
  if (typeof e.event !== 'string' || e.event.trim() === '') problems.push('event (the Signal event name) is missing or empty');
  if (typeof e.event_id !== 'string' || e.event_id.trim() === '') problems.push('event_id is missing or empty');
  if (e.properties !== undefined && !isRecord(e.properties)) problems.push('properties must be an object');
  if (e.consent !== undefined && !isRecord(e.consent)) problems.push('consent must be an object of category → true/false');
  return problems;
}

export function eventIdOf(e: unknown): string | null {
  return isRecord(e) && typeof e.event_id === 'string' && e.event_id !== '' ? e.event_id : null;
}

export function eventNameOf(e: unknown): string | undefined {
  return isRecord(e) && typeof e.event === 'string' ? e.event : undefined;
}
