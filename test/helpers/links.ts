/**
 * Relative links of Markdown pages, checked as a reader would follow them: the target file or folder
 * exists under the same root, and a `#fragment` names a heading of the target page (GitHub's anchors).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** GitHub's anchor for a heading: lower case, code ticks and punctuation dropped, spaces as hyphens. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

/** The Markdown without fenced code blocks (a link inside one is not a link). */
function prose(md: string): string {
  return md.replace(/^```[^\n]*\n[\s\S]*?^```[ \t]*$/gm, '');
}

function anchors(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(md).matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = slug(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

/** Every relative link target of a page (inline links `[text](target)`; `<...>` and titles allowed). */
export function relativeLinks(md: string): string[] {
  const out: string[] = [];
  for (const m of prose(md).replace(/`[^`\n]*`/g, '').matchAll(/\]\(<?([^)\s>]+)>?(?:\s+"[^"]*")?\)/g)) {
    const target = m[1]!;
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
    out.push(target);
  }
  return out;
}

/** Links of `files` (relative to `root`) that do not resolve inside `root`: `file: target (why)`. */
export function brokenLinks(root: string, files: readonly string[]): string[] {
  const broken: string[] = [];
  for (const file of files) {
    const path = join(root, file);
    const md = readFileSync(path, 'utf8');
    for (const link of relativeLinks(md)) {
      const [target = '', fragment] = link.split('#', 2);
      const to = target ? resolve(dirname(path), decodeURIComponent(target)) : path;
      const inside = relative(root, to);
      if (inside.startsWith('..') || inside.split(sep)[0] === '..') broken.push(`${file}: ${link} (outside the package)`);
      else if (!existsSync(to)) broken.push(`${file}: ${link} (no such file)`);
      else if (fragment !== undefined && statSync(to).isFile() && to.endsWith('.md') && !anchors(readFileSync(to, 'utf8')).has(fragment)) {
        broken.push(`${file}: ${link} (no heading #${fragment})`);
      }
    }
  }
  return broken;
}
