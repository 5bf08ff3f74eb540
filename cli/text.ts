/**
 * Text output that a value cannot forge. Event ids, messages, vendor answers, file names and spec keys
 * come from files, events and vendors; printed raw, a `\n` in an event_id prints a fake outcome line and
 * an ESC sequence repaints the operator's terminal. Every text line the CLI prints goes through `safe`:
 * C0 and C1 control characters, DEL, the Unicode line/paragraph separators and the bidirectional
 * overrides are written as JSON-style escapes (`\n`, `\u001b`, `\u202e`). JSON output needs none of this
 * (JSON.stringify escapes control characters; a JSON consumer does not read lines of text).
 */

// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** The text with every control or bidi character escaped: it prints as exactly one line, as written. */
export function safe(text: string): string {
  return text.replace(UNSAFE, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Several lines: each line made safe, the line breaks kept. */
export function safeLines(text: string): string {
  return text.split('\n').map(safe).join('\n');
}
