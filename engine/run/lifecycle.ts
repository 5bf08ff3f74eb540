/**
 * The engine's delivery lifecycle, shared by its integrations: whether new deliveries are still taken,
 * which ones are in flight, and the one signal that aborts them all (shutdown past its deadline, close).
 */
import { SignalLinks, type LinkedSignal } from './abort-fanout.js';

export class DeliveryLifecycle {
  private readonly controller = new AbortController();
  private readonly links = new SignalLinks(this.controller.signal);
  /** Deliveries in flight, and who waits for there to be none. */
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  private stopping = false;

  /** False once a shutdown began: new deliveries end at once as `interrupted`. */
  get accepting(): boolean {
    return !this.stopping;
  }

  get aborted(): boolean {
    return this.controller.signal.aborted;
  }

  get size(): number {
    return this.inflight;
  }

  /** A signal for one piece of work: aborted by the engine, or by `extra` (the caller's signal). Shared, not per piece. */
  signal(extra?: AbortSignal): LinkedSignal {
    return this.links.signal(extra);
  }

  /** A delivery starts: counted in flight until its `leave`. */
  enter(): void {
    this.inflight++;
  }

  /** A delivery's outcome is final; the last one out wakes whoever waits for idle. */
  leave(): void {
    if (--this.inflight > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Take no new deliveries. */
  stop(): void {
    this.stopping = true;
  }

  /** Abort every delivery in flight: no retry, each ends as `interrupted`. */
  abort(): void {
    this.stopping = true;
    if (!this.controller.signal.aborted) this.controller.abort(new DOMException('the engine is shutting down', 'AbortError'));
  }

  /** Resolves once no delivery is in flight (including ones that started while waiting). */
  async idle(): Promise<void> {
    while (this.inflight) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }
}
