/** POST /v2/token (auth host): client-credentials tokens, and the bearer check every REST endpoint uses. */
import { randomBytes } from 'node:crypto';
import { firstHeader, isFormContentType, isPlainObject, parseForm, tryParseJson } from './http-util.js';
import { DEFAULT_SCOPES, INVALID_CLIENT_BODY, INVALID_GRANT_MID_BODY, NOT_AUTHORIZED_BODY } from './constants.js';
import { json, restError, type Ctx, type EmulatorState, type HandlerResult, type TokenInfo } from './state.js';
import type { EmulatorClient } from './types.js';

function sweepTokens(s: EmulatorState, now: number): void {
  for (const [t, info] of s.tokens) if (info.dies_at <= now) s.tokens.delete(t);
}

function issueToken(s: EmulatorState, client: EmulatorClient, accountId: string | null, scopes: string[], earlyDeath: boolean): { token: string; info: TokenInfo } {
  const now = Date.now();
  if (++s.tokensSinceSweep >= 1000) {
    s.tokensSinceSweep = 0;
    sweepTokens(s, now);
  }
  const lifetimeMs = s.expiresIn * 1000;
  const expiresAt = now + lifetimeMs;
  let diesAt = expiresAt;
  if (earlyDeath) {
    diesAt = Math.min(expiresAt, now + (s.faults.token_death_ms ?? Math.max(1, Math.round(lifetimeMs * 0.1))));
    s.stats.token_early_deaths++;
  }
  // Opaque, JWT-looking token (the real ones start with "eyJ"), random so it cannot be guessed.
  const token = `eyJhbGciOiJIUzI1NiIsImtpZCI6ImVtdWxhdG9yIn0.${randomBytes(32).toString('base64url')}`;
  const info: TokenInfo = {
    tenant: client.tenant,
    client_id: client.client_id,
    account_id: accountId,
    scopes,
    issued_at: now,
    expires_at: expiresAt,
    dies_at: diesAt,
  };
  s.tokens.set(token, info);
  s.stats.tokens_issued++;
  return { token, info };
}

/** Returns the token's info, or the 401 to answer. */
export function authorize(s: EmulatorState, ctx: Ctx): TokenInfo | HandlerResult {
  const header = firstHeader(ctx.req.headers.authorization);
  const match = header ? /^\s*Bearer\s+(\S+)\s*$/i.exec(header) : null;
  const token = match?.[1];
  const info = token ? s.tokens.get(token) : undefined;
  const now = Date.now();
  if (!token || !info || info.dies_at <= now || info.tenant !== ctx.tenant) {
    if (token && info && info.dies_at <= now) s.tokens.delete(token);
    s.stats.unauthorized++;
    return json(401, NOT_AUTHORIZED_BODY);
  }
  return info;
}

/** A REST call's token and its scope, or the 401/403 answer: what every REST handler checks first. */
export function authorizeScope(s: EmulatorState, ctx: Ctx, scope: string): TokenInfo | HandlerResult {
  const auth = authorize(s, ctx);
  if ('status' in auth) return auth;
  return requireScope(auth, scope) ?? auth;
}

export function requireScope(info: TokenInfo, scope: string): HandlerResult | null {
  if (info.scopes.includes(scope)) return null;
  return json(403, restError('Insufficient Privileges', 20002));
}

export function handleToken(s: EmulatorState, ctx: Ctx): HandlerResult {
  const ct = firstHeader(ctx.req.headers['content-type']);
  let params: Record<string, unknown> | null = null;
  if (isFormContentType(ct)) {
    params = parseForm(ctx.bodyText);
  } else {
    const parsed = tryParseJson(ctx.bodyText);
    if (parsed.ok && isPlainObject(parsed.value)) params = parsed.value;
    else if (!parsed.ok && ctx.bodyText.includes('=')) params = parseForm(ctx.bodyText);
  }
  if (!params) {
    return json(400, {
      error: 'invalid_request',
      error_description: 'The request body must be a JSON object or application/x-www-form-urlencoded.',
      error_uri: 'https://developer.salesforce.com/docs',
    });
  }
  if (params['grant_type'] !== 'client_credentials') {
    return json(400, {
      error: 'unsupported_grant_type',
      error_description: `Use "client_credentials" as the "grant_type" value.`,
      error_uri: 'https://developer.salesforce.com/docs',
    });
  }
  const clientId = params['client_id'];
  const clientSecret = params['client_secret'];
  const client = s.clients.find(
    (c) => c.tenant === ctx.tenant && c.client_id === clientId && c.client_secret === clientSecret,
  );
  if (!client || typeof clientId !== 'string' || typeof clientSecret !== 'string') {
    s.stats.unauthorized++;
    return json(401, INVALID_CLIENT_BODY);
  }
  const rawAccount = params['account_id'];
  let accountId: string | null = null;
  if (rawAccount !== undefined && rawAccount !== null) {
    accountId = typeof rawAccount === 'string' || typeof rawAccount === 'number' ? String(rawAccount).trim() : '';
    const allowed = client.account_ids === undefined || client.account_ids.includes(accountId);
    if (!/^\d+$/.test(accountId) || !allowed) {
      s.stats.unauthorized++;
      return json(401, INVALID_GRANT_MID_BODY);
    }
  }
  const granted = client.scopes ?? DEFAULT_SCOPES;
  let scopes = granted;
  const rawScope = params['scope'];
  if (typeof rawScope === 'string' && rawScope.trim() !== '') {
    const asked = rawScope.trim().split(/\s+/);
    const missing = asked.filter((s) => !granted.includes(s));
    if (missing.length > 0) {
      return json(400, {
        error: 'invalid_scope',
        error_description: `The requested scope is not granted to this package: ${missing.join(' ')}`,
        error_uri: 'https://developer.salesforce.com/docs',
      });
    }
    scopes = asked;
  }
  const { token } = issueToken(s, client, accountId, scopes, ctx.faults.earlyDeath);
  return json(200, {
    access_token: token,
    token_type: 'Bearer',
    expires_in: s.expiresIn,
    scope: scopes.join(' '),
    soap_instance_url: `https://${client.tenant}.soap.marketingcloudapis.com/`,
    rest_instance_url: `https://${client.tenant}.rest.marketingcloudapis.com/`,
  });
}
