/**
 * Optional request parts (`{?expr}`): where an optional placeholder may stand. Absent, it leaves out what it
 * fills, so what it fills must be a whole part of the request: a header (any placeholder in its value), or
 * the whole value of a query parameter (`?a={?x}&...`). Anywhere else, leaving it out would change a path
 * or a method, so that is a load error. Pure: the parsed template in, the problems (with offsets) out.
 */
import type { TemplatePart } from './template.js';

export type OptionalWhere = 'url' | 'header' | 'method';

export function optionalPartProblems(parts: readonly TemplatePart[], where: OptionalWhere): { message: string; offset: number }[] {
  const out: { message: string; offset: number }[] = [];
  let literal = '';
  for (const [i, part] of parts.entries()) {
    if ('text' in part) {
      literal += part.text;
      continue;
    }
    if (!part.optional) continue;
    const at = part.offset - 2;
    if (where === 'method') {
      out.push({ message: 'a method cannot be optional: write {expr}, not {?expr}', offset: at });
      continue;
    }
    if (where === 'header') continue;
    const before = parts[i - 1];
    const after = parts[i + 1];
    const inQuery = literal.includes('?');
    const wholeValue = before !== undefined && 'text' in before && /[?&][^=&?#/{}]+=$/.test(before.text) && (after === undefined || ('text' in after && /^[&#]/.test(after.text)));
    if (!inQuery || !wholeValue) {
      out.push({
        message: 'an optional placeholder {?expr} in a URL must be the whole value of a query parameter (…?name={?expr} or …&name={?expr}, followed by & or the end): left out, it takes its parameter with it',
        offset: at,
      });
    }
  }
  return out;
}
