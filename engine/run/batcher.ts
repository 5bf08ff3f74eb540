/**
 * Batching policy, independent of HTTP: items queue until a batch is full by count or by bytes, or the
 * oldest item has waited long enough; then the batch is handed to `send`, which settles every item.
 * `flush()` sends whatever is queued (end of input, shutdown). A bounded number of batches is in
 * flight at once; items queued meanwhile keep filling the next batch, so a busy integration sends
 * full batches and a quiet one still sends within `max_wait_ms`.
 */

export interface BatchLimits {
  max_items: number;
  /** Upper bound on the request body: envelope + items + separators. */
  max_bytes: number;
  max_wait_ms: number;
  /** Bytes the envelope adds around the items, and per item for the separator. */
  envelope_bytes: number;
  max_in_flight: number;
}

export interface Pending<T, R> {
  item: T;
  bytes: number;
  resolve: (r: R) => void;
}

/** Pure: would adding an item of `bytes` to a batch of `count` items totalling `total` bytes break a limit? */
export function wouldOverflow(limits: BatchLimits, count: number, total: number, bytes: number): boolean {
  if (count === 0) return false;
  if (count + 1 > limits.max_items) return true;
  return limits.envelope_bytes + total + bytes + count > limits.max_bytes;
}

export class Batcher<T, R> {
  private queue: Pending<T, R>[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private readonly ready: Pending<T, R>[][] = [];
  private idleWaiters: (() => void)[] = [];
  /** Batches sent, for metrics and tests. */
  batches = 0;

  constructor(
    private readonly limits: BatchLimits,
    private readonly send: (batch: Pending<T, R>[]) => Promise<void>,
  ) {}

  /** Queue an item; resolves with its result when its batch is done. */
  add(item: T, bytes: number): Promise<R> {
    return new Promise<R>((resolve) => {
      if (wouldOverflow(this.limits, this.queue.length, this.queuedBytes, bytes)) this.cut();
      this.queue.push({ item, bytes, resolve });
      this.queuedBytes += bytes;
      if (this.queue.length >= this.limits.max_items) this.cut();
      else if (!this.timer) {
        this.timer = setTimeout(() => this.cut(), this.limits.max_wait_ms);
      }
    });
  }

  /** Send everything queued now, and resolve when every batch (queued or in flight) is done. */
  async flush(): Promise<void> {
    if (this.queue.length) this.cut();
    if (this.inFlight === 0 && this.ready.length === 0) return;
    await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  /** Nothing queued, waiting or in flight. */
  get idle(): boolean {
    return this.queue.length === 0 && this.ready.length === 0 && this.inFlight === 0;
  }

  get pending(): number {
    return this.queue.length + this.ready.reduce((n, b) => n + b.length, 0);
  }

  private cut(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.queue.length) return;
    this.ready.push(this.queue);
    this.queue = [];
    this.queuedBytes = 0;
    this.pump();
  }

  private pump(): void {
    while (this.inFlight < this.limits.max_in_flight && this.ready.length) {
      const batch = this.ready.shift()!;
      this.inFlight++;
      this.batches++;
      void this.send(batch)
        .catch(() => undefined) // `send` settles every item itself; this only keeps the pump alive
        .finally(() => {
          this.inFlight--;
          this.pump();
          if (this.inFlight === 0 && this.ready.length === 0) {
            const waiters = this.idleWaiters;
            this.idleWaiters = [];
            waiters.forEach((w) => w());
          }
        });
    }
  }
}
