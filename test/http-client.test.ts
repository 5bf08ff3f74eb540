/**
 * The engine's got client (engine/run/http.ts): requests reach Node's http layer with got's HTTP-cache
 * options emptied. got spreads them into the native request options, and on Node 20 a spread copy that
 * is then extended costs ~35 µs of hidden-class churn per request (bench: README "delivery"); the engine
 * uses no HTTP cache, so they are emptied through got's public setter before that copy is made.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpClient, exchange } from '../engine/run/http.js';
import { DEFAULT_RETRY_POLICY } from '../engine/policy/retry-delay.js';

let url = '';
const received: { method?: string; body: string }[] = [];
const server = createServer((req: IncomingMessage, res) => {
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    received.push({ method: req.method, body });
    res.writeHead(202, { 'content-type': 'application/json' }).end('{"requestId":"r-1"}');
  });
});
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('engine http client', () => {
  it('empties the HTTP-cache options before got builds the native request, and still sends the request as given', async () => {
    const { client, close } = createHttpClient();
    const seen: string[][] = [];
    // Hooks of an extended client run after the engine's own: this one sees what got then copies.
    const probe = client.extend({ hooks: { beforeRequest: [(options) => void seen.push(Object.keys(options.cacheOptions))] } });
    try {
      const res = await exchange(
        probe,
        { stage: 'send', method: 'POST', url, headers: { 'Content-Type': 'application/json' }, body: '{"a":1}' },
        { rules: [], vendorError: {} as never, success: (s) => s >= 200 && s < 300, bindings: {}, policy: DEFAULT_RETRY_POLICY },
      );
      expect(res.status).toBe(202);
      expect(res.json).toEqual({ requestId: 'r-1' });
      expect(received.at(-1)).toEqual({ method: 'POST', body: '{"a":1}' });
      expect(seen).toEqual([[]]);
      // got's own default, for contrast: the four cache keys are there unless emptied.
      expect(Object.keys((await import('got')).default.defaults.options.cacheOptions).length).toBeGreaterThan(0);
    } finally {
      close();
    }
  });
});
