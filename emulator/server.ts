/** The HTTP server: records every request, applies faults, dispatches to the API handlers, answers. */
import http from 'node:http';
import type { IncomingMessage, ServerResponse, IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { firstHeader, isFormContentType, parseForm, parseHost, readBody, tryParseJson } from './http-util.js';
import { MAX_STORED_BODY } from './constants.js';
import { createState, emptyStats, json, restError, sleep, type Ctx, type EmulatorState, type HandlerResult } from './state.js';
import { decideFaults, preFaultResult, setFaults } from './faults.js';
import { matchRoute } from './routes.js';
import type { Emulator, EmulatorOptions, RecordedRequest } from './types.js';

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function send(res: ServerResponse, rec: RecordedRequest, result: HandlerResult): void {
  if (res.destroyed || res.writableEnded) return;
  const payload = result.body === undefined ? '' : JSON.stringify(result.body);
  rec.status = result.status;
  rec.response_body = payload;
  res.writeHead(result.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(payload)),
    ...result.headers,
  });
  res.end(payload);
}

function destroy(req: IncomingMessage, rec: RecordedRequest): void {
  rec.status = 0;
  rec.response_body = '';
  req.socket.destroy();
}

async function handle(s: EmulatorState, req: IncomingMessage, res: ServerResponse, current: { rec?: RecordedRequest }): Promise<void> {
  let body;
  try {
    body = await readBody(req, MAX_STORED_BODY);
  } catch {
    // Client went away mid-body: nothing to answer.
    req.socket.destroy();
    return;
  }
  const url = new URL(req.url ?? '/', 'http://emulator.invalid');
  const forwarded = firstHeader(req.headers['x-forwarded-host']);
  const hostInfo = parseHost(forwarded && forwarded.trim() !== '' ? forwarded : firstHeader(req.headers.host));
  const tenant = hostInfo.tenant ?? s.defaultTenant;
  const ct = firstHeader(req.headers['content-type']);
  let parsedBody: unknown = null;
  if (!body.truncated) {
    if (isFormContentType(ct)) parsedBody = parseForm(body.text);
    else {
      const p = tryParseJson(body.text);
      parsedBody = p.ok ? (p.value ?? null) : null;
    }
  }
  const rec: RecordedRequest = {
    at: Date.now(),
    method: req.method ?? 'GET',
    path: url.pathname,
    tenant,
    headers: { ...(req.headers as IncomingHttpHeaders) },
    body: body.text,
    json: parsedBody,
    status: 0,
    query: url.search,
    host_kind: hostInfo.kind,
    bytes: body.bytes,
    fault: null,
    response_body: '',
  };
  s.requests.push(rec);
  current.rec = rec;
  s.stats.requests++;

  if (tenant === null || !s.tenants.has(tenant)) {
    send(res, rec, json(404, restError('Not Found', 404)));
    return;
  }
  const route = matchRoute(rec.method, url.pathname);
  if ('status' in route) {
    send(res, rec, route);
    return;
  }
  if (s.enforceHostKind && hostInfo.kind !== null && hostInfo.kind !== route.service) {
    send(res, rec, json(404, restError('Not Found', 404)));
    return;
  }
  if (body.truncated && route.category !== 'rows') {
    send(res, rec, json(413, restError('Request Entity Too Large', 413)));
    return;
  }

  const decision = decideFaults(s, route.category);
  if (decision.exclusive === 'reset_before_record') {
    rec.fault = 'reset_before_record';
    s.stats.resets_before_record++;
    destroy(req, rec);
    return;
  }
  const pre = decision.exclusive ? preFaultResult(s, decision.exclusive) : null;
  if (pre) {
    rec.fault = decision.exclusive;
    if (decision.slow) {
      s.stats.slow++;
      await sleep(s, s.faults.slow_ms ?? 200);
    }
    send(res, rec, pre);
    return;
  }

  const ctx: Ctx = {
    req,
    rec,
    tenant,
    url,
    bodyText: body.text,
    bodyBytes: body.bytes,
    bodyTruncated: body.truncated,
    params: route.params,
    faults: decision,
  };
  const result = route.handler(s, ctx);

  if (decision.exclusive === 'reset_after_record') {
    rec.fault = 'reset_after_record';
    s.stats.resets_after_record++;
    destroy(req, rec);
    return;
  }
  if (decision.earlyDeath) rec.fault = 'token_early_death';
  if (decision.slow) {
    rec.fault ??= 'slow';
    s.stats.slow++;
    await sleep(s, s.faults.slow_ms ?? 200);
  }
  send(res, rec, result);
}

export async function startMarketingCloudEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const bindHost = opts.host ?? '127.0.0.1';
  if (!isLoopback(bindHost)) throw new Error(`The emulator only binds to loopback addresses, not ${bindHost}`);
  const s = createState(opts);
  setFaults(s, opts.faults);

  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const current: { rec?: RecordedRequest } = {};
    handle(s, req, res, current).catch((err: unknown) => {
      try {
        s.stats.internal_errors++;
        const last = current.rec;
        const message = err instanceof Error ? err.message : String(err);
        if (!res.headersSent && !res.destroyed) {
          const payload = JSON.stringify(restError(`Internal emulator error: ${message}`, 500));
          if (last) {
            last.status = 500;
            last.response_body = payload;
          }
          res.writeHead(500, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(payload)) });
          res.end(payload);
        } else {
          res.destroy();
        }
      } catch {
        req.socket.destroy();
      }
    });
  });
  // Long idle keep-alive so clients' pooled sockets are not closed under them (which would look like
  // spurious resets in fault-counting tests).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ port: opts.port ?? 0, host: bindHost, backlog: 4096 }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  const emulator: Emulator = {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    host: address.address,
    clients: s.clients,
    requests: s.requests,
    tokenRequests: () => s.requests.filter((r) => r.path === '/v2/token'),
    events: () => s.events.slice(),
    rows: (key?: string) => (key === undefined ? s.rows.slice() : s.rows.filter((r) => r.key === key)),
    table: (key: string, tenant?: string) => {
      const t = (tenant ?? s.clients[0]?.tenant ?? '').toLowerCase();
      return [...(s.tables.get(`${t}|${key}`)?.values() ?? [])];
    },
    stats: s.stats,
    setExpiresIn(seconds: number) {
      if (!(seconds > 0)) throw new RangeError('expires_in must be positive');
      s.expiresIn = seconds;
    },
    setFaults: (f) => setFaults(s, f),
    setEventDefinitionKeys(keys: string[]) {
      s.eventKeys = new Set(keys);
    },
    revokeTokens() {
      s.tokens.clear();
    },
    reset() {
      s.requests.length = 0;
      s.events.length = 0;
      s.rows.length = 0;
      s.batchRequests.clear();
      s.deRequests.clear();
      s.tables.clear();
      Object.assign(s.stats, emptyStats());
    },
    close() {
      if (s.closed) return Promise.resolve();
      s.closed = true;
      for (const [timer, resolve] of s.pendingTimers) {
        clearTimeout(timer);
        resolve();
      }
      s.pendingTimers.clear();
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return emulator;
}
