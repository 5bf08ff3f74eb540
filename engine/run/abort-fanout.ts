/**
 * Abort signals for many deliveries at once without a listener per delivery on a shared signal (which
 * Node reports as MaxListenersExceededWarning past 10): each parent signal gets ONE listener, which
 * aborts every child linked to it; a child is dropped from its parents once its delivery ends, and a
 * parent's listener goes when it has no children left.
 */

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
