/**
 * Old-generation growth for a long streaming run (`deliver`). What `deliver` keeps alive is small and
 * flat (~20 MB after a full collection, at any input size), but at thousands of events a second the
 * objects that outlive a request by a little (got's per-request state) are promoted, and V8 by default
 * lets the old generation grow to several times its live size before a full collection: a sawtooth that
 * peaks ~60 MB above what is live. A growing factor of 1.5 (V8 reads `--heap-growing-percent` each time
 * it sets the next limit, so it takes effect when set after start-up) keeps the peak near the live size;
 * it caps nothing — a run that holds more (large events, big batches) still gets all the heap it needs,
 * with full collections as often as the growth allows. An operator's own setting wins.
 */
import v8 from 'node:v8';

export const HEAP_GROWING_PERCENT = 50;

let applied = false;

/** Set once per process; kept when the operator set `--heap-growing-percent` (flags or NODE_OPTIONS). */
export function boundHeapGrowth(): void {
  if (applied) return;
  applied = true;
  const given = [...process.execArgv, process.env.NODE_OPTIONS ?? ''].some((a) => /heap[-_]growing[-_]percent/.test(a));
  if (!given) v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
