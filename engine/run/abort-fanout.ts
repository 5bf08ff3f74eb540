/**
 * Abort signals for many deliveries at once without a listener per delivery on a caller's shared signal
 * (which Node reports as MaxListenersExceededWarning past 10): each parent signal gets ONE listener, which
 * aborts every child linked to it; a child is dropped from its parents once its delivery ends, and a
 * parent's listener goes when it has no children left.
 */
import { setMaxListeners } from 'node:events';

interface Fanout {
  children: Set<AbortController>;
  onAbort: () => void;
}

const fanouts = new WeakMap<AbortSignal, Fanout>();

export interface LinkedSignal {
  signal: AbortSignal;
  /** Unlink from the parents (call when the work ends, aborted or not). */
  release: () => void;
}

/** A signal that aborts when any of `parents` does (with its reason). */
export function linkedSignal(...parents: (AbortSignal | undefined)[]): LinkedSignal {
  const child = new AbortController();
  const linked: AbortSignal[] = [];
  const release = () => {
    for (const p of linked) {
      const f = fanouts.get(p);
      if (!f) continue;
      f.children.delete(child);
      if (f.children.size === 0) {
        p.removeEventListener('abort', f.onAbort);
        fanouts.delete(p);
      }
    }
    linked.length = 0;
  };
  for (const p of parents) {
    if (!p) continue;
    if (p.aborted) {
      release();
      child.abort(p.reason);
      return { signal: child.signal, release: () => {} };
    }
    let f = fanouts.get(p);
    if (!f) {
      const children = new Set<AbortController>();
      const onAbort = () => {
        fanouts.delete(p);
        for (const c of children) c.abort(p.reason);
        children.clear();
      };
      f = { children, onAbort };
      fanouts.set(p, f);
      p.addEventListener('abort', onAbort, { once: true });
    }
    f.children.add(child);
    linked.push(p);
  }
  return { signal: child.signal, release };
}

/**
 * The engine's signal, and one signal per caller signal linked to it, shared by every delivery in flight
 * under the same pair: no AbortController per delivery (an AbortSignal and its listeners cost more per
 * request than the rest of the engine's own work). The shared signals are the engine's own, so the
 * listeners got adds per request in flight go on them (no warning: their limit is lifted), never on the
 * caller's signal, which carries one. A linked signal goes once no delivery uses it.
 */
export class SignalLinks {
  private readonly linked = new Map<AbortSignal, { link: LinkedSignal; users: number }>();

  private readonly own: LinkedSignal;

  constructor(private readonly base: AbortSignal) {
    setMaxListeners(0, base);
    this.own = { signal: base, release: noop };
  }

  /** A signal aborted by the engine's or by `extra`; `release` when the work ends. */
  signal(extra?: AbortSignal): LinkedSignal {
    if (!extra || extra === this.base) return this.own;
    let entry = this.linked.get(extra);
    if (!entry) {
      const link = linkedSignal(this.base, extra);
      if (link.signal.aborted) return link;
      setMaxListeners(0, link.signal);
      entry = { link, users: 0 };
      this.linked.set(extra, entry);
    }
    entry.users++;
    const e = entry;
    let released = false;
    return {
      signal: e.link.signal,
      release: () => {
        if (released) return;
        released = true;
        if (--e.users === 0 && this.linked.get(extra) === e) {
          this.linked.delete(extra);
          e.link.release();
        }
      },
    };
  }
}

const noop = () => {};

/** What a signal can cancel: got's request promise (`cancel()` destroys the request and stops its retries). */
export interface Cancellable {
  cancel(): void;
}

const cancellables = new WeakMap<AbortSignal, Set<Cancellable>>();

/**
 * Cancel `c` when `signal` aborts (at once when it already has); `forget` it when its work ends. One
 * listener per signal however many are registered, and no listener, closure or AbortController per
 * request: handing got the signal itself costs a listener added and removed on it per request.
 */
export function cancelOnAbort(signal: AbortSignal, c: Cancellable): void {
  if (signal.aborted) {
    c.cancel();
    return;
  }
  let set = cancellables.get(signal);
  if (!set) {
    const s = new Set<Cancellable>();
    cancellables.set(signal, s);
    signal.addEventListener(
      'abort',
      () => {
        cancellables.delete(signal);
        for (const x of s) x.cancel();
        s.clear();
      },
      { once: true },
    );
    set = s;
  }
  set.add(c);
}

export function forget(signal: AbortSignal, c: Cancellable): void {
  cancellables.get(signal)?.delete(c);
}
