/**
 * `validate [paths...]`: check spec files, print every problem as file:line:col (or JSON, or GitHub
 * Actions annotations), exit 1 when any is invalid and 2 when a path does not exist.
 *
 * A glob such as `specs/**\/*.yaml` (expanded by the shell, or here when quoted) also names partials (files without `vendor` under a `partials/`
 * folder, checked through the specs that extend them) and pins (`record` + `event`, run by `test`): those
 * are skipped and listed, not reported as broken specs. `-` reads one spec from standard input.
 */
import { stat } from 'node:fs/promises';
import { Option, type Command } from 'commander';
import { isMap, isScalar } from 'yaml';
import { checkSpecs, formatDiagnostic, type Diagnostic } from '../../engine/index.js';
import { decodeSpec, parseYaml, readSpecBytes } from '../../engine/load/source.js';
import { expandPathArgs } from '../globs.js';
import { explainSpec, formatExplanation } from '../../engine/compile/explain.js';
import { CliError, displayPath, EXIT, resolvePath, type CliIO } from '../io.js';
import { specsDirs, type Context } from '../context.js';
import { readStdin } from '../stdin.js';
import { safe } from '../text.js';

export type ValidateFormat = 'text' | 'json' | 'github';

interface ValidateOptions {
  format: ValidateFormat;
  explain?: boolean;
}

export function registerValidate(program: Command, ctx: Context): void {
  program
    .command('validate')
    .description('check integration spec files (default: the specs directory); exit 1 when any is invalid, 2 when a path does not exist')
    .argument('[paths...]', "spec files or directories ('-': one spec on standard input)")
    .addOption(new Option('--format <format>', 'text, json (one document on stdout) or github (Actions annotations)').choices(['text', 'json', 'github']).default('text'))
    .option('--explain', 'also list every expression and whether it runs compiled or in the JSONata interpreter (and why)')
    .action(async (paths: string[], opts: ValidateOptions, cmd: Command) => {
      ctx.exitCode = await validate(ctx.io, paths.length ? paths : specsDirs(ctx, cmd), opts.format, opts.explain === true);
    });
}

type Skipped = { file: string; kind: 'partial' | 'pin' };

/**
 * A file a glob picked up that is not a spec: a pin (record + event, no vendor), or a partial in a
 * `partials/` folder. Read as the loader reads specs (size cap first, linear-time parse), and only its
 * top-level keys looked at: anything unreadable or broken is left for the spec check to report.
 */
function notASpec(arg: string, file: string): Skipped['kind'] | undefined {
  let contents: unknown;
  try {
    contents = parseYaml(decodeSpec(readSpecBytes(file))).doc.contents;
  } catch {
    return undefined;
  }
  if (!isMap(contents)) return undefined;
  const keys = new Set(contents.items.map((p) => (isScalar(p.key) ? String(p.key.value) : '')));
  if (keys.has('vendor')) return undefined;
  if (keys.has('record') && keys.has('event')) return 'pin';
  return arg.split(/[\\/]/).slice(0, -1).includes('partials') ? 'partial' : undefined;
}

/** GitHub Actions workflow command escaping (data and property values). */
function ghData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
function ghProp(s: string): string {
  return ghData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

export async function validate(io: CliIO, args: string[], format: ValidateFormat = 'text', explain = false): Promise<number> {
  const paths: string[] = [];
  const texts: { file: string; text: string }[] = [];
  const skipped: Skipped[] = [];
  const stdin = args.includes('-');
  if (stdin) texts.push({ file: resolvePath(io, '<stdin>'), text: (await readStdin(io, 'a spec')).toString('utf8') });
  for (const { arg, path: abs } of await expandPathArgs(io, args.filter((a) => a !== '-'))) {
    const s = await stat(abs).catch(() => undefined);
    if (!s) throw new CliError(`'${displayPath(io, abs)}' does not exist (expected spec files or directories)`);
    const kind = s.isFile() ? notASpec(arg, abs) : undefined;
    if (kind) skipped.push({ file: abs, kind });
    else paths.push(abs);
  }
  const { specs, diagnostics } = paths.length || texts.length ? await checkSpecs(paths, texts) : { specs: new Map(), diagnostics: [] as Diagnostic[] };
  if (explain && format === 'text') for (const spec of specs.values()) io.stdout.write(formatExplanation(spec.vendor, explainSpec(spec)) + '\n');
  const shown = (f: string): string => displayPath(io, resolvePath(io, f));
  const located = diagnostics.map((d) => ({ ...d, file: shown(d.file) }));
  const badFiles = new Set(diagnostics.map((d) => d.file));
  const valid = [...specs.values()].filter((s) => !badFiles.has(s.file)).length;
  const checked = valid + badFiles.size;
  const s = (n: number, w: string): string => `${n} ${w}${n === 1 ? '' : 's'}`;

  if (format === 'json') {
    io.stdout.write(
      JSON.stringify({
        ok: checked > 0 && diagnostics.length === 0,
        checked,
        valid,
        specs: [...specs.keys()],
        diagnostics: located,
        skipped: skipped.map((k) => ({ file: shown(k.file), kind: k.kind })),
      }) + '\n',
    );
  } else if (format === 'github') {
    for (const d of located) {
      io.stdout.write(`::error file=${ghProp(d.file)},line=${d.line},col=${d.col},title=${ghProp(d.path ? `spec: ${d.path}` : 'spec')}::${ghData(d.message)}\n`);
    }
  } else {
    for (const d of located) io.stdout.write(safe(formatDiagnostic(d)) + '\n');
  }
  if (skipped.length && format !== 'json') {
    const count = (k: Skipped['kind']) => skipped.filter((x) => x.kind === k).length;
    const parts = [count('partial') ? `${s(count('partial'), 'partial')} (checked through the specs that extend them)` : '', count('pin') ? `${s(count('pin'), 'pin')} (run 'signal-integrations test')` : ''].filter(Boolean);
    io.stderr.write(`note: skipped ${parts.join(' and ')}\n`);
  }
  if (checked === 0) {
    if (format !== 'json') io.stderr.write(safe(`error: no spec files (*.yaml, *.yml) found in ${args.map((a) => (a === '-' ? '<stdin>' : shown(a))).join(', ')}`) + '\n');
    return EXIT.failed;
  }
  if (diagnostics.length === 0) {
    if (format !== 'json') io.stdout.write(safe(`ok: ${s(checked, 'spec file')} valid (${[...specs.keys()].join(', ')})`) + '\n');
    return EXIT.ok;
  }
  if (format !== 'json') io.stdout.write(`invalid: ${s(diagnostics.length, 'problem')} in ${s(badFiles.size, 'file')}; ${valid} of ${s(checked, 'spec file')} valid\n`);
  return EXIT.failed;
}
