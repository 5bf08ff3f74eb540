/**
 * Smooth token-bucket rate limiting for `requests_per_minute: N`.
 *
 * Sustained rate is N/60 per second, and the bucket holds at most one second's worth of tokens
 * (at least 1). Vendors that state a per-minute limit often enforce it over shorter windows, so
 * letting a whole minute's budget out in one burst would get us throttled; one second's worth keeps
 * traffic smooth while still allowing a small burst after idle time.
 */

export interface BucketState {
  /** Available tokens; negative means that many requests are already reserved ahead (queued). */
  tokens: number;
  /** Clock reading (ms) at which `tokens` was last brought up to date. */
  updated_at: number;
}

/** Absorbs floating-point noise so e.g. 1 / (120/60000) rounds to 500 ms, not 501. */
const EPSILON_MS = 1e-6;

/**
 * Reserve one token. Pure: returns the new state and how long the caller must wait before using
 * the token (0 = now). The state may go negative: that is the reservation queue, so a later caller
 * waits behind earlier ones rather than racing them.
 *
 * A clock that moves backwards adds no tokens (and doesn't rewind updated_at), so skew can't mint
 * extra capacity.
 */
export function takeToken(
  state: BucketState,
  rate_per_ms: number,
  capacity: number,
  now: number,
): { state: BucketState; wait_ms: number } {
  const elapsed = Math.max(0, now - state.updated_at);
  const refilled = Math.min(capacity, state.tokens + elapsed * rate_per_ms);
  const tokens = refilled - 1;
  const wait_ms = tokens >= 0 ? 0 : Math.max(0, Math.ceil(-tokens / rate_per_ms - EPSILON_MS));
  return { state: { tokens, updated_at: Math.max(now, state.updated_at) }, wait_ms };
}

interface Waiter {
  resolve: () => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/**
 * FIFO rate limiter over takeToken. Callers wait (never dropped) until their turn.
 *
 * Only the head of the queue holds a reservation; it is served by a single timer, and the next
 * waiter reserves once the head is released. This gives strict FIFO order regardless of how the
 * runtime orders timers with equal deadlines, and lets a cancelled head hand its token back.
 *
 * Timers are deliberately NOT unref'd: pending deliveries must keep the process alive until sent.
 */
export class RateLimiter {
  private rate_per_ms: number;
  private capacity: number;
  private readonly now: () => number;
  private state: BucketState;
  private readonly queue: Waiter[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(requests_per_minute: number, now: () => number = () => performance.now()) {
    if (!Number.isFinite(requests_per_minute) || requests_per_minute <= 0) {
      throw new RangeError(`requests_per_minute must be a positive finite number, got ${requests_per_minute}`);
    }
    this.rate_per_ms = requests_per_minute / 60_000;
    this.capacity = Math.max(1, requests_per_minute / 60);
    this.now = now;
    // Start full: the first second's worth of requests after startup need not wait.
    this.state = { tokens: this.capacity, updated_at: now() };
  }

  /** Requests per minute now allowed. */
  get requests_per_minute(): number {
    return this.rate_per_ms * 60_000;
  }

  /**
   * Lower the limit to `requests_per_minute` if that is lower (several records sharing one scope: the
   * strictest applies); a higher value changes nothing.
   */
  limitTo(requests_per_minute: number): void {
    if (!(requests_per_minute > 0) || requests_per_minute >= this.requests_per_minute) return;
    this.rate_per_ms = requests_per_minute / 60_000;
    this.capacity = Math.max(1, requests_per_minute / 60);
    this.state = { ...this.state, tokens: Math.min(this.state.tokens, this.capacity) };
  }

  /** Resolves when the caller may send one request; rejects with signal.reason if aborted first. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, signal, onAbort: undefined };
      if (signal) {
        waiter.onAbort = () => this.cancel(waiter);
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
      // A timer pending means the head is already being served; it will pump the rest.
      if (this.timer === undefined) this.pump();
    });
  }

  /** Serve waiters from the head while tokens are available; arm one timer for the first that must wait. */
  private pump(): void {
    while (this.queue.length > 0) {
      const result = takeToken(this.state, this.rate_per_ms, this.capacity, this.now());
      this.state = result.state;
      if (result.wait_ms <= 0) {
        this.release(this.queue.shift()!);
        continue;
      }
      this.timer = setTimeout(() => {
        this.timer = undefined;
        // The head's token was reserved when the timer was armed.
        const head = this.queue.shift();
        if (head) this.release(head);
        this.pump();
      }, result.wait_ms);
      return;
    }
  }

  private release(waiter: Waiter): void {
    this.detach(waiter);
    waiter.resolve();
  }

  private cancel(waiter: Waiter): void {
    const index = this.queue.indexOf(waiter);
    if (index < 0) return;
    this.queue.splice(index, 1);
    this.detach(waiter);
    if (index === 0 && this.timer !== undefined) {
      // The head held a reservation: return it so the next waiter isn't delayed for a request
      // that was never sent, then let the next waiter reserve.
      clearTimeout(this.timer);
      this.timer = undefined;
      this.state = { ...this.state, tokens: this.state.tokens + 1 };
      this.pump();
    }
    waiter.reject(abortReason(waiter.signal));
  }

  private detach(waiter: Waiter): void {
    if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
  }
}

function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? new DOMException('The operation was aborted.', 'AbortError');
}
