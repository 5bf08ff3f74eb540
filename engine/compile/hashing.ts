/**
 * The hashing and normalising built-ins of the expression language (`$sha256`, `$hmacSha256`,
 * `$sha256Once`, `$normalizeEmail`, `$normalizePhone`): plain functions over already type-checked
 * arguments, shared by the compiled path and the interpreter so both give one answer. A bad argument
 * value (an unknown encoding) throws a FunctionError, which both paths report as JSONata reports its own.
 */
import { createHash, createHmac } from 'node:crypto';

/** A JSONata-style error object: JSONata keeps `code` and `message` of an object a function throws. */
export class FunctionError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const ENCODINGS = ['hex', 'base64'] as const;
export type Encoding = (typeof ENCODINGS)[number];

export function encodingOf(fn: string, encoding: unknown): Encoding {
  if (encoding === undefined) return 'hex';
  if (encoding === 'hex' || encoding === 'base64') return encoding;
  throw new FunctionError('SI3001', `$${fn}: the encoding must be 'hex' or 'base64', not ${JSON.stringify(encoding)}`);
}

/** SHA-256 of the string's UTF-8 bytes. */
export function sha256(s: string, encoding: Encoding): string {
  return createHash('sha256').update(s, 'utf8').digest(encoding);
}

export function hmacSha256(key: string, message: string, encoding: Encoding): string {
  return createHmac('sha256', key).update(message, 'utf8').digest(encoding);
}

/** A SHA-256 hex digest (either case): what an upstream system that hashed already would send. */
const HASHED = /^[0-9a-fA-F]{64}$/;
export const isSha256Hex = (s: string): boolean => s.length === 64 && HASHED.test(s);

/** `$sha256Once`: a value that is already a SHA-256 hex digest is passed through (lower-cased), anything else is hashed. */
export function sha256Once(s: string): string {
  return isSha256Hex(s) ? s.toLowerCase() : sha256(s, 'hex');
}

/**
 * `$normalizeEmail`: trim surrounding whitespace and lower-case (the rule conversions APIs publish; which ones:
 * docs/spec-language.md); nothing else (no removal of dots or `+tags`: not every vendor does it,
 * and a hash of a changed address would no longer match the vendor's own). A blank value gives nothing,
 * so an empty string is never hashed into a "real" identifier.
 */
export function normalizeEmail(s: string): string | undefined {
  const t = s.trim().toLowerCase();
  return t === '' ? undefined : t;
}

export const PHONE_FORMATS = ['digits', 'e164'] as const;

export function phoneFormatOf(format: unknown): 'digits' | 'e164' {
  if (format === undefined || format === 'digits' || format === 'e164') return format ?? 'digits';
  throw new FunctionError('SI3002', `$normalizePhone: the format must be 'digits' or 'e164', not ${JSON.stringify(format)}`);
}

/** A country calling code as written in a config: `44`, `"44"`, `"+44"` or `"0044"`; 1 to 3 digits. */
export function callingCodeOf(code: unknown): string | undefined {
  if (code === undefined) return undefined;
  const text = typeof code === 'number' ? String(code) : typeof code === 'string' ? code.trim().replace(/^(\+|00)/, '') : undefined;
  if (text === undefined || !/^[1-9][0-9]{0,2}$/.test(text)) {
    throw new FunctionError('SI3003', `$normalizePhone: the default country calling code must be 1 to 3 digits (e.g. '44' or '+44'), not ${JSON.stringify(code)}`);
  }
  return text;
}

/**
 * `$normalizePhone`: E.164 (ITU-T E.164: country code and national number, at most 15 digits) as the
 * conversions APIs want it hashed — digits only, or with a leading `+` (`'e164'`); which API wants which:
 * docs/spec-language.md. A number written internationally (`+44 …`, `0044 …`) keeps its own
 * country code; any other is national: its leading zeros (the trunk prefix) are dropped and the default
 * calling code is put in front — without one, the digits are taken to include their country code, as
 * those APIs ask. Letters and symbols are dropped. Anything that does not come out as 7 to 15 digits is not a
 * phone number and gives nothing; a SHA-256 hex digest is passed through, so `$sha256Once` can follow.
 */
export function normalizePhone(s: string, defaultCode: string | undefined, format: 'digits' | 'e164'): string | undefined {
  const t = s.trim();
  if (isSha256Hex(t)) return t.toLowerCase();
  let digits: string;
  if (t.startsWith('+') || t.startsWith('00')) digits = t.replace(/\D/g, '').replace(/^00/, '');
  else {
    const national = t.replace(/\D/g, '').replace(/^0+/, '');
    digits = national === '' ? '' : (defaultCode ?? '') + national;
  }
  if (digits.length < 7 || digits.length > 15 || digits.startsWith('0')) return undefined;
  return format === 'e164' ? `+${digits}` : digits;
}
