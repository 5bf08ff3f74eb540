/**
 * Build once before the test files run, so subprocess tests can start `node dist/cli/main.js`.
 * Same as `npx tsc -p tsconfig.build.json` (the project's tsc, started directly to save npx's startup).
 * Type errors do not stop the run — tsc still emits, and `npm test` type-checks separately — but a build
 * that produced no CLI does.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

export default async function setup(): Promise<void> {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const result = await new Promise<{ code: number; output: string }>((resolve) => {
    execFile(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
  });
  if (result.code !== 0) {
    if (!existsSync(`${root}dist/cli/main.js`)) throw new Error(`build failed (tsc -p tsconfig.build.json):\n${result.output}`);
    console.warn(`warning: tsc -p tsconfig.build.json reported errors (dist was still emitted):\n${result.output}`);
  }
}
