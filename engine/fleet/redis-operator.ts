/**
 * The operator's side of the Redis queue (redis-queue.ts is the consumer's): counts, purging, listing dead
 * letters and replaying them. Replay puts back, by default, only the dead letters whose last failure the engine
 * classed retryable (`retryable: true`: out of attempts, a vendor outage, a record that was catching up) —
 * a permanent failure (a failed check, a refused secret) would fail again at once; `all` includes them.
 * A replayed event keeps its whole history; its attempts count afresh from the replay (`replayed_after`).
 */
import { isSealed } from '../store/seal.js';
import { GROUP, type keys, type Scripted } from './redis-scripts.js';
import type { AttemptSummary, QueuedEvent, QueueRecord, QueueStatus, ReplayResult } from './queue.js';

/** What the operator functions need of a connected queue, for one integration. */
export interface OperatorAccess {
  redis: Scripted;
  keys: ReturnType<typeof keys>;
  /** `active` and `wake` of the keyspace: replayed work is due now. */
  active: string;
  wake: string;
  /** A stored value's text: itself when plain, opened when sealed, undefined when it cannot be opened here. */
  open(stored: string, aad: string): string | undefined;
  /** A queued message's text as stored (sealed when the queue has a key); `messageAad` opens one. */
  sealMessage(text: string): string;
  messageAad: string;
  /** Count one round trip (RedisQueue.roundTrips). */
  trip(): void;
}

/** Counts of one integration's queue (one round trip). */
export async function status(a: OperatorAccess): Promise<QueueStatus> {
  const k = a.keys;
  a.trip();
  const [xlen, pending, delayed, dead, stats] = (await a.redis
    .pipeline()
    .xlen(k.stream)
    .xpending(k.stream, GROUP)
    .zcard(k.delayed)
    .zcard(k.dead)
    .hgetall(k.stats)
    .exec()) as [Error | null, unknown][];
  const n = (v: unknown) => (typeof v === 'number' ? v : Number(v ?? 0) || 0);
  // No group yet (nothing enqueued): nothing in flight.
  const inFlight = pending?.[0] ? 0 : n((pending?.[1] as unknown[] | undefined)?.[0]);
  const s = (stats?.[1] ?? {}) as Record<string, string>;
  return {
    waiting: Math.max(0, n(xlen?.[1]) - inFlight),
    in_flight: inFlight,
    scheduled_retry: n(delayed?.[1]),
    delivered: n(s.delivered),
    failed: n(s.failed),
    dead_lettered: n(dead?.[1]),
    skipped: n(s.skipped),
    enqueued: n(s.enqueued),
    replayed: n(s.replayed),
  };
}

/** Delete an integration's queue for good (`records rm --purge`); resolves with how many events it held. */
export async function purge(a: OperatorAccess, integration: string, g: { active: string; integrations: string; names: string }): Promise<number> {
  const k = a.keys;
  const st = await status(a);
  a.trip();
  const res = await a.redis
    .pipeline()
    .del(k.stream, k.delayed, k.dead, k.deadData, k.stats, k.outcomes)
    .zrem(g.active, integration)
    .srem(g.integrations, integration)
    .hdel(g.names, integration)
    .exec();
  const failed = res?.find(([err]) => err);
  if (failed) throw failed[0];
  return st.waiting + st.in_flight + st.scheduled_retry + st.dead_lettered;
}

export async function deadLetters(a: OperatorAccess, opts: { limit?: number } = {}): Promise<string[]> {
  const k = a.keys;
  const out: string[] = [];
  const limit = opts.limit ?? Infinity;
  for (let start = 0; out.length < limit; start += 500) {
    a.trip();
    const ids = await a.redis.zrange(k.dead, start, start + 499);
    if (!ids.length) break;
    a.trip();
    const lines = await a.redis.hmget(k.deadData, ...ids);
    lines.forEach((l, j) => {
      if (l !== null && out.length < limit) out.push(a.open(l, k.deadData) ?? sealedDeadLetter(ids[j]!, l));
    });
    if (ids.length < 500) break;
  }
  return out;
}

export async function replay(a: OperatorAccess, record: QueueRecord, opts: { limit?: number; all?: boolean } = {}): Promise<ReplayResult> {
  const k = a.keys;
  const result: ReplayResult = { replayed: 0, not_retryable: 0, unreadable: 0 };
  let skip = 0;
  const limit = opts.limit ?? Infinity;
  while (result.replayed < limit) {
    const want = Math.min(500, limit - result.replayed);
    a.trip();
    const ids = await a.redis.zrange(k.dead, skip, skip + want - 1);
    if (!ids.length) break;
    a.trip();
    const lines = await a.redis.hmget(k.deadData, ...ids);
    const p = a.redis.pipeline();
    let batch = 0;
    ids.forEach((id, i) => {
      const stored = lines[i] ?? null;
      const line = stored === null ? null : (a.open(stored, k.deadData) ?? null);
      const r = replayMessage(id, line, record, (t) => a.open(t, a.messageAad));
      // What is not replayed stays in the dead letters for the operator.
      if (r === undefined) {
        skip++;
        result.unreadable++; // no event to send again (its line never parsed, or it is sealed with another key)
        return;
      }
      if (!r.retryable && !opts.all) {
        skip++;
        result.not_retryable++;
        return;
      }
      (p as unknown as { signalQueueReplay(...x: string[]): unknown }).signalQueueReplay(k.stream, k.dead, k.deadData, k.stats, id, a.sealMessage(JSON.stringify(r.message)));
      batch++;
    });
    if (batch) {
      a.trip();
      const res = await p.exec();
      for (const [err, r] of res ?? []) {
        if (err) throw err;
        if (r === 1) result.replayed++;
      }
    }
    if (ids.length < want) break;
  }
  if (result.replayed) {
    a.trip();
    await (a.redis.pipeline() as unknown as { signalActiveDue(...x: (string | number)[]): { publish(c: string, m: string): { exec(): Promise<unknown> } } })
      .signalActiveDue(a.active, record.id, 0)
      .publish(a.wake, record.id)
      .exec();
  }
  return result;
}

/**
 * The message a dead letter goes back as: the same job (the job_id the dead letter carries; `member`, its
 * key in the dead letters, may be `<job_id>#<n>`), its whole history with fresh attempts counted after
 * it, the duplicate flag kept; and whether the engine classed its last failure retryable. A message a
 * worker could not unseal that opens here counts as retryable: its failure was the worker's key, not the event.
 */
function replayMessage(member: string, line: string | null, record: QueueRecord, openMessage: (text: string) => string | undefined): { message: QueuedEvent; retryable: boolean } | undefined {
  if (line === null) return undefined;
  try {
    const entry = JSON.parse(line) as {
      dead_letter?: { possibly_duplicated?: boolean; replays?: number; job_id?: unknown; retryable?: unknown; history?: unknown };
      event?: unknown;
      raw_line?: unknown;
    };
    const dl = entry.dead_letter ?? {};
    let event = entry.event;
    let jobId = typeof dl.job_id === 'string' && dl.job_id ? dl.job_id : member;
    let pd = dl.possibly_duplicated === true;
    let retryable = dl.retryable === true;
    if ((typeof event !== 'object' || event === null) && typeof entry.raw_line === 'string' && isSealed(entry.raw_line)) {
      // A message a worker could not unseal, kept sealed: replayed with the key that sealed it, it goes back.
      const text = openMessage(entry.raw_line);
      const m = text === undefined ? undefined : (JSON.parse(text) as Partial<QueuedEvent>);
      if (m && typeof m.job_id === 'string') {
        event = m.event;
        jobId = m.job_id;
        pd ||= m.possibly_duplicated === true;
        retryable = true;
      }
    }
    if (typeof event !== 'object' || event === null) return undefined;
    const history = Array.isArray(dl.history) ? (dl.history.filter((h) => typeof h === 'object' && h !== null) as AttemptSummary[]) : [];
    return {
      retryable,
      message: {
        job_id: jobId,
        integration: record.id,
        scope: record.scope,
        event,
        history,
        replayed_after: history.length,
        ...(pd ? { possibly_duplicated: true } : {}),
        enqueued_at: Date.now(),
        replays: (typeof dl.replays === 'number' ? dl.replays : 0) + 1,
      },
    };
  } catch {
    return undefined;
  }
}

/** What `deadLetters` shows for a dead letter sealed with another key: the fact, and the value still sealed (nothing lost). */
function sealedDeadLetter(member: string, stored: string): string {
  return JSON.stringify({
    dead_letter: {
      reason: 'sealed_unreadable',
      message: 'this dead letter is sealed with another SIGNAL_STORE_KEY (or none is set here): it cannot be shown; it stays in the dead letters',
      hint: 'run dead-letters (or replay) with the SIGNAL_STORE_KEY the workers had when it was dead-lettered',
      job_id: member.replace(/#\d+$/, ''),
    },
    sealed: stored,
  });
}
