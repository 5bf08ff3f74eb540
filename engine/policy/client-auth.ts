/**
 * OAuth 2.0 client authentication with a password (RFC 6749 §2.3.1), and the reading of a token answer's
 * `token_type` (§5.1, §7.1). Pure: strings in, strings out.
 */

/**
 * `application/x-www-form-urlencoded` encoding of one value (RFC 6749 Appendix B, as the WHATWG URL
 * standard's urlencoded serializer defines it): space becomes `+`; every byte of the UTF-8 encoding except
 * ASCII letters, digits and `*-._` is percent-encoded, so `!'()~` and `%`, `+`, `:`, `/` are too — unlike
 * `encodeURIComponent`, which writes space as `%20` and leaves `!'()*~` as they are.
 */
export function formUrlEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

/**
 * The `Authorization` header value of `client_secret_basic`: the client id and secret, each
 * form-urlencoded, joined by `:` and base64-encoded (so a `:` in the id cannot be read as the separator).
 */
export function basicCredentials(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${formUrlEncode(id)}:${formUrlEncode(secret)}`, 'utf8').toString('base64')}`;
}

/** Whether a token answer's `token_type` is the one expected: token types are case-insensitive (§5.1). */
export function tokenTypeMatches(stated: unknown, expected: string): boolean {
  return typeof stated === 'string' && stated.toLowerCase() === expected.toLowerCase();
}
