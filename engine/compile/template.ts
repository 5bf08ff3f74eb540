/**
 * Templates: literal text with `{expression}` placeholders, used for URLs and header values.
 * Parsing and rendering are pure functions so the rules are tested alone.
 *
 * - Braces nest and quoted strings inside a placeholder may contain braces (`{$join(["a","}"])}`).
 * - In URLs every value is percent-encoded: a value can fill a host label or a path segment but can
 *   never add a `/`, `?`, `#` or `@` and change where the request goes.
 * - In headers a value may not contain CR or LF (no header injection).
 */

import { SignalError } from '../errors.js';

export type TemplatePart = { text: string } | { expr: string; offset: number };

export class TemplateSyntaxError extends SignalError {
  constructor(
    message: string,
    readonly position: number,
  ) {
    super('template.syntax', message);
    this.name = 'TemplateSyntaxError';
  }
}

export function parseTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let text = '';
  let i = 0;
  while (i < template.length) {
    const ch = template[i]!;
    if (ch === '}') throw new TemplateSyntaxError("unmatched '}' in template", i);
    if (ch !== '{') {
      text += ch;
      i++;
      continue;
    }
    const open = i;
    let depth = 1;
    let quote: string | undefined;
    i++;
    while (i < template.length && depth > 0) {
      const c = template[i]!;
      if (quote) {
        if (c === '\\') i++;
        else if (c === quote) quote = undefined;
      } else if (c === '"' || c === "'") quote = c;
      else if (c === '{') depth++;
      else if (c === '}') depth--;
      i++;
    }
    if (depth > 0) throw new TemplateSyntaxError("unclosed '{' in template", open);
    const expr = template.slice(open + 1, i - 1);
    if (!expr.trim()) throw new TemplateSyntaxError('empty placeholder {} in template', open);
    if (text) parts.push({ text });
    text = '';
    parts.push({ expr, offset: open + 1 });
  }
  if (text) parts.push({ text });
  return parts;
}

export type TemplateContext = 'url' | 'header';

export class TemplateValueError extends SignalError {
  constructor(message: string) {
    super('template.value', message);
    this.name = 'TemplateValueError';
  }
}

/** Render one placeholder value; throws TemplateValueError for a value that cannot go there. */
export function renderValue(value: unknown, expr: string, context: TemplateContext): string {
  if (value === undefined || value === null || value === '') {
    throw new TemplateValueError(`placeholder {${expr}} has no value`);
  }
  if (typeof value === 'object') throw new TemplateValueError(`placeholder {${expr}} is not a string or number`);
  const s = String(value);
  if (context === 'url') return encodeURIComponent(s);
  if (/[\r\n\0]/.test(s)) throw new TemplateValueError(`placeholder {${expr}} contains a line break`);
  return s;
}

export function renderTemplate(parts: readonly TemplatePart[], values: readonly unknown[], context: TemplateContext): string {
  let out = '';
  let v = 0;
  for (const part of parts) {
    if ('text' in part) out += part.text;
    else out += renderValue(values[v++], part.expr, context);
  }
  return out;
}
