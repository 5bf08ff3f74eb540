/**
 * A worker following the registry of records (`worker --all-records`): a lane per enabled record, brought up
 * to date on every change notification and by a reconciliation of every record's version each
 * `reconcileMs` (a missed notification leaves the worker stale for at most that long). A changed record
 * applies to the next event taken (in-flight ones keep the integration they started with); a disabled or
 * removed one is retired: it takes no new events, its queue is kept.
 */
import type { DeliveryQueue } from './queue.js';
import type { RecordRegistry } from './registry.js';
import type { Lane, WorkerLogger } from './lane.js';

export interface FollowDeps {
  registry: RecordRegistry;
  reconcileMs: number;
  /** The worker's lanes by record id (changed in place). */
  lanes: Map<string, Lane>;
  /** A lane for a record (throws RecordError when the record is not deliverable). */
  newLane(record: unknown, version?: string): Lane;
  queue: DeliveryQueue;
  log: WorkerLogger;
  /** Dispose what a lane no longer needs once nothing of it is in flight (and forget it when retired). */
  forgetDrained(lane: Lane): void;
  /** A lane was added or changed: the scheduler should look again. */
  changed(): void;
  stopping(): boolean;
}

/** Load every record, then follow the registry; resolves with the function that stops following. */
export async function followRegistry(d: FollowDeps): Promise<() => void> {
  const { lanes, log, queue, forgetDrained, newLane } = d;
  const follow = d.registry;
  const reconcileMs = d.reconcileMs;
  const sync = async (id: string, known?: { entry: { version: string; enabled: boolean }; record: unknown } | null): Promise<void> => {
    const got = known === undefined ? await follow.get(id) : (known ?? undefined);
    const lane = lanes.get(id);
    if (!got || !got.entry.enabled) {
      if (lane && !lane.retired && lane.version !== undefined) {
        lane.retired = true; // in-flight events finish; the queue keeps the rest
        log.info({ integration: id, reason: got ? 'disabled' : 'removed' }, 'integration stopped: no new events taken, its queue is kept');
        if (!lane.inflight.size) forgetDrained(lane);
      }
      return;
    }
    if (lane && !lane.retired && lane.version === got.entry.version) return;
    let next: Lane;
    try {
      next = newLane(got.record, got.entry.version);
    } catch (e) {
      log.error({ integration: id, err: (e as Error).message }, 'record in the registry is not deliverable: its events wait');
      return;
    }
    if (next.name !== id) return log.error({ integration: id }, 'record stored under another id than its own: ignored');
    // The name shown beside the id by `status`: written in batches (a visit makes sure of the queue itself).
    if (lane?.integration.name !== next.integration.name) labels.set(id, next.integration.name);
    if (lane && lanes.get(id) === lane) {
      // The next event taken uses the new record (new credentials: a new token scope); in-flight ones keep theirs.
      if (lane.integration !== next.integration) lane.draining.push(lane.integration);
      Object.assign(lane, { integration: next.integration, version: next.version, policy: next.policy, window: next.window, retired: false });
      if (!lane.inflight.size) forgetDrained(lane);
      log.info({ integration: id }, 'integration record changed: applies to the next event taken');
    } else {
      lanes.set(id, next);
      log.info({ integration: id, name: next.integration.name }, 'integration added');
    }
    d.changed();
  };
  const labels = new Map<string, string>();
  const writeLabels = async (): Promise<void> => {
    if (!labels.size || !queue.label) return;
    const batch = new Map(labels);
    labels.clear();
    await queue.label(batch).catch((e: unknown) => log.warn({ err: (e as Error).message }, 'recording integration names failed'));
  };
  let reconciling: Promise<void> | undefined;
  const reconcile = (): Promise<void> =>
    (reconciling ??= (async () => {
      try {
        const versions = await follow.versions();
        const stale = [...versions].filter(([id, v]) => lanes.get(id)?.version !== v || lanes.get(id)?.retired).map(([id]) => id);
        const records = await follow.getMany(stale);
        for (const id of stale) await sync(id, records.get(id) ?? null);
        for (const [id, lane] of lanes) if (lane.version !== undefined && !versions.has(id)) await sync(id, null);
        await writeLabels();
      } catch (e) {
        log.error({ err: (e as Error).message }, 'reading the registry failed; retrying at the next reconciliation');
      } finally {
        reconciling = undefined;
      }
    })());

  const changed = new Set<string>();
  let syncing: Promise<void> | undefined;
  const drain = (): void => {
    syncing ??= (async () => {
      while (changed.size && !d.stopping()) {
        const [id] = changed;
        changed.delete(id!);
        await sync(id!).catch((e: unknown) => log.error({ integration: id, err: (e as Error).message }, 'reading a changed record failed; the next reconciliation retries'));
      }
      await writeLabels();
      syncing = undefined;
    })();
  };
  const off = follow.onChange((id) => {
    changed.add(id);
    drain();
  });
  await reconcile();
  const timer = setInterval(() => void reconcile(), reconcileMs);
  timer.unref?.();
  return () => {
    off();
    clearInterval(timer);
  };
}
