/**
 * Modules `npm run build` generates beside the engine's own (ajv standalone validators): one is used only
 * while its stamp (the hash of the schema it was made from, or the ajv version that made it) matches what
 * this process would compile; when absent (tests run from sources) or stale, the caller compiles instead.
 */
import { createRequire } from 'node:module';

export function prebuiltModule<T>(base: string, file: string, stamp: string, expected: string): T | undefined {
  try {
    const mod = createRequire(base)(`./${file}`) as T & { default?: T } & Record<string, unknown>;
    if (mod[stamp] !== expected) return undefined;
    return typeof mod.default === 'function' ? mod.default : mod;
  } catch {
    return undefined;
  }
}
