import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';

/** The package root, found from this file whether it runs from engine/ (tests) or dist/engine/ (build). */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(resolve(dir, 'package.json')) && existsSync(resolve(dir, 'schemas'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('signal-integrations: cannot find the package root (schemas/ next to package.json)');
}

const ROOT = findRoot();

export function packagePath(...parts: string[]): string {
  return resolve(ROOT, ...parts);
}

/** The specs shipped with the package. */
export const BUNDLED_SPECS_DIR = packagePath('specs');
