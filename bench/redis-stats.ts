/** Redis's own command counts (INFO commandstats; commands inside Lua scripts count there), for the fleet benches. */
import type { Redis } from 'ioredis';

/** Calls per command name. */
export async function commandStats(r: Redis): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const line of (await r.info('commandstats')).split('\n')) {
    const x = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (x) m.set(x[1]!, Number(x[2]));
  }
  return m;
}

/** Every command executed so far. */
export async function commandsProcessed(r: Redis): Promise<number> {
  let total = 0;
  for (const n of (await commandStats(r)).values()) total += n;
  return total;
}
