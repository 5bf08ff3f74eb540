/**
 * A real, independently written OAuth 2.0 authorization server (oidc-provider, OpenID certified) on
 * 127.0.0.1 — client-credentials grant, JWT access tokens (RS256) with a short lifetime — and a small
 * resource API that verifies those tokens with jose against the server's JWKS, answering a bad token
 * with `401` and an RFC 6750 challenge in WWW-Authenticate. Test controls: fail the next token
 * requests with 503, and rotate the signing key (a new key set; tokens signed with the old key no longer verify).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, type JSONWebKeySet } from 'jose';
import Provider, { type Configuration } from 'oidc-provider';

export const AUDIENCE = 'urn:signal-test:events-api';

export interface OAuthClient {
  client_id: string;
  client_secret: string;
  token_endpoint_auth_method: 'client_secret_basic' | 'client_secret_post';
}

export interface OAuthWorld {
  /** The issuer, e.g. http://127.0.0.1:PORT; the token endpoint is `${issuer}/token`. */
  issuer: string;
  tokenEndpoint: string;
  authPort: number;
  /** The resource API's base URL (its own port). */
  api: string;
  apiPort: number;
  /** Every request the token endpoint received (status answered), in order. */
  tokenRequests: { status: number; authorization?: string; body: string }[];
  /** Every resource API request, with its status. */
  apiRequests: { status: number; token: string; body: string; error?: string }[];
  /** The next `n` token requests are answered 503 (before oidc-provider sees them). */
  failNextTokenRequests(n: number): void;
  /** A new signing key: later tokens are signed with it, and the old key leaves the JWKS. */
  rotateKeys(): Promise<void>;
  close(): Promise<void>;
}

async function signingKeys(): Promise<JSONWebKeySet> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return { keys: [{ ...jwk, alg: 'RS256', use: 'sig', kid: `k-${Date.now()}-${Math.random().toString(36).slice(2, 8)}` }] };
}

function provider(issuer: string, clients: OAuthClient[], jwks: JSONWebKeySet, ttl: number): Provider {
  const config: Configuration = {
    clients: clients.map((c) => ({ ...c, grant_types: ['client_credentials'], redirect_uris: [], response_types: [] })),
    jwks: jwks as Configuration['jwks'],
    ttl: { ClientCredentials: ttl },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'events:write', audience: AUDIENCE, accessTokenTTL: ttl, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
      },
    },
  };
  return new Provider(issuer, config);
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

export async function startOAuthWorld(opts: { clients: OAuthClient[]; accessTokenTtl: number }): Promise<OAuthWorld> {
  let failing = 0;
  let jwks = await signingKeys();
  let handler: (req: IncomingMessage, res: ServerResponse) => void = () => undefined;
  const tokenRequests: OAuthWorld['tokenRequests'] = [];
  const apiRequests: OAuthWorld['apiRequests'] = [];

  const authServer = createServer((req, res) => {
    if (req.url?.startsWith('/token')) {
      const authorization = req.headers.authorization;
      const record: OAuthWorld['tokenRequests'][number] = { status: 0, body: '', ...(authorization ? { authorization } : {}) };
      tokenRequests.push(record);
      res.on('finish', () => {
        record.status = res.statusCode;
      });
      if (failing > 0) {
        failing--;
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end('{"error":"temporarily_unavailable"}');
        return;
      }
    }
    handler(req, res);
  });
  const authPort = await listen(authServer);
  const issuer = `http://127.0.0.1:${authPort}`;
  const install = (keys: JSONWebKeySet) => {
    const p = provider(issuer, opts.clients, keys, opts.accessTokenTtl);
    handler = p.callback();
  };
  install(jwks);

  // The resource API: the token must verify against the issuer's current public keys, for this audience.
  const apiServer = createServer(async (req, res) => {
    const body = await readBody(req);
    const token = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const publicKeys = { keys: jwks.keys.map(({ d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub }) => pub) };
    try {
      await jwtVerify(token, createLocalJWKSet(publicKeys), { issuer, audience: AUDIENCE });
    } catch (e) {
      const description = (e as Error).message.replace(/"/g, "'");
      apiRequests.push({ status: 401, token, body, error: 'invalid_token' });
      res.writeHead(401, { 'www-authenticate': `Bearer realm="events", error="invalid_token", error_description="${description}"`, 'content-type': 'text/plain' });
      res.end('unauthorized');
      return;
    }
    apiRequests.push({ status: 202, token, body });
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: `ev_${apiRequests.length}` }));
  });
  const apiPort = await listen(apiServer);
  const close = (s: Server) =>
    new Promise<void>((resolve) => {
      s.closeAllConnections();
      s.close(() => resolve());
    });

  return {
    issuer,
    tokenEndpoint: `${issuer}/token`,
    authPort,
    api: `http://127.0.0.1:${apiPort}`,
    apiPort,
    tokenRequests,
    apiRequests,
    failNextTokenRequests: (n) => {
      failing = n;
    },
    rotateKeys: async () => {
      jwks = await signingKeys();
      install(jwks);
    },
    close: async () => {
      await Promise.all([close(authServer), close(apiServer)]);
    },
  };
}
