/**
 * Tokens are secrets: with a key (SIGNAL_STORE_KEY) they are stored in Redis sealed with AES-256-GCM, so
 * a Redis dump, MONITOR or a replica shows no usable token. A fresh 12-byte IV per value; the Redis key is
 * the additional authenticated data, so a sealed value copied under another key does not open.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SignalError } from '../errors.js';

const PREFIX = 'gcm1:';

/** A 32-byte key given as 64 hex digits or as base64 (44 characters). Anything else is refused, never guessed. */
export function parseStoreKey(text: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(t) ? Buffer.from(t, 'base64') : undefined;
  if (!key || key.length !== 32) {
    throw new SignalError('store.key', 'SIGNAL_STORE_KEY must be 32 random bytes as 64 hex digits or base64 (e.g. `openssl rand -hex 32`)');
  }
  return key;
}

/** Whether a stored value is sealed (by `seal`, with some key). */
export function isSealed(value: string): boolean {
  return value.startsWith(PREFIX);
}

export function seal(key: Buffer, aad: string, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
}

/** The plaintext, or undefined when the value is not sealed with this key for this Redis key (wrong key, tampered, plain). */
export function unseal(key: Buffer, aad: string, sealed: string): string | undefined {
  if (!sealed.startsWith(PREFIX)) return undefined;
  const buf = Buffer.from(sealed.slice(PREFIX.length), 'base64');
  if (buf.length < 28) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(0, 12));
    decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(buf.subarray(12, 28));
    return Buffer.concat([decipher.update(buf.subarray(28)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}
