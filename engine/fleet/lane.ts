/** A worker's view of one integration it serves (worker.ts keeps them by record id; follow.ts updates them). */
import type { CircuitState } from '../policy/circuit.js';
import type { QueueRetryPolicy } from '../policy/queue-retry.js';
import type { Integration } from '../run/integration.js';
import type { Lease } from './queue.js';

/** The subset of a pino logger the worker uses (pino fits; so does a console adapter). */
export interface WorkerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface Lane {
  /** The record's id: its queue's key. */
  name: string;
  /** The record's current integration: the next event taken uses it (in-flight ones keep theirs). */
  integration: Integration;
  /** The registry version it was made from (followed records only). */
  version?: string;
  policy: QueueRetryPolicy;
  window: number;
  inflight: Map<string, Lease>;
  /** Slots promised to a take in progress. */
  reserved: number;
  circuit: CircuitState;
  /** Disabled or removed: takes nothing new; forgotten once its in-flight events are done. */
  retired: boolean;
  /** Integrations replaced while their events were in flight, disposed when those are done. */
  draining: Integration[];
}
