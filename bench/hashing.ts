/**
 * `npm run bench` (hashing section): what `$sha256` costs on the compiled path against the JSONata
 * interpreter (the same functions registered, as the engine registers them), and against node:crypto
 * called directly, for `$sha256(s)` and the usual `$sha256Once($normalizeEmail(s))`. Same-run ratios:
 * rounds alternate, BENCH_HASH_REPS (default 7) of each after a warm-up, BENCH_HASH_N values per round (default 20000);
 * the min–max over the rounds' ratios is printed.
 */
import { createHash } from 'node:crypto';
import jsonata from 'jsonata';
import { DEFAULT_FUNCTIONS } from '../engine/compile/builtins.js';
import { compileExpression } from '../engine/compile/expression.js';

const N = Number(process.env.BENCH_HASH_N ?? 20_000);
const REPS = Number(process.env.BENCH_HASH_REPS ?? 7);
const inputs = Array.from({ length: N }, (_, i) => ({ email: `  User.${i}@Example.COM ` }));

function interpreter(src: string): jsonata.Expression {
  const e = jsonata(src);
  for (const f of DEFAULT_FUNCTIONS.registered) e.registerFunction(f.name, f.implementation, f.signature);
  return e;
}

const cases: { label: string; src: string; raw: (s: string) => string }[] = [
  { label: '$sha256(email)', src: '$sha256(email)', raw: (s) => createHash('sha256').update(s, 'utf8').digest('hex') },
  {
    label: '$sha256Once($normalizeEmail(email))',
    src: '$sha256Once($normalizeEmail(email))',
    raw: (s) => createHash('sha256').update(s.trim().toLowerCase(), 'utf8').digest('hex'),
  },
];

const perSecond = (ms: number) => (N / ms) * 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const range = (xs: number[]) => `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}× (median ${median(xs).toFixed(1)}×)`;

for (const c of cases) {
  const compiled = compileExpression(c.src);
  if (compiled.path.kind !== 'compiled') throw new Error(`${c.src} is not on the compiled path`);
  const interp = interpreter(c.src);
  // Same answers first, then time.
  for (const x of inputs.slice(0, 100)) {
    const a = compiled.evaluate(x, {});
    if (a !== (await interp.evaluate(x)) || a !== c.raw(x.email)) throw new Error(`${c.src}: answers differ on ${x.email}`);
  }
  const interpRatio: number[] = [];
  const rawRatio: number[] = [];
  let best = 0;
  for (let r = -1; r < REPS; r++) {
    let t = performance.now();
    let sink = 0;
    for (const x of inputs) sink += (compiled.evaluate(x, {}) as string).length;
    const fast = performance.now() - t;
    t = performance.now();
    for (const x of inputs) sink += ((await interp.evaluate(x)) as string).length;
    const slow = performance.now() - t;
    t = performance.now();
    for (const x of inputs) sink += c.raw(x.email).length;
    const raw = performance.now() - t;
    if (sink === 0) throw new Error('nothing hashed');
    if (r < 0) continue; // a warm-up round, not counted
    interpRatio.push(slow / fast);
    rawRatio.push(fast / raw);
    best = Math.max(best, perSecond(fast));
  }
  console.log(
    `hashing  ${c.label.padEnd(38)}  compiled ${(best / 1000).toFixed(0)}k/s; interpreter takes ${range(interpRatio)} the compiled time; compiled takes ${range(rawRatio)} node:crypto's (${REPS} rounds of ${N})`,
  );
}
