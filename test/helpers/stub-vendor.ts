/**
 * A tiny vendor on 127.0.0.1 for specs that are not Marketing Cloud: every request is recorded, and the
 * answer for a path is whatever the test set last (status, JSON body, optional delay).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubAnswer {
  status?: number;
  body?: unknown;
  delay_ms?: number;
  /** Read the request, then destroy the connection without answering (its fate unknown to the client). */
  destroy?: boolean;
  /** Extra response headers. */
  headers?: Record<string, string>;
}

export interface StubVendor {
  url: string;
  /** `url` is the path with its query. */
  requests: { method: string; path: string; url: string; body: string; headers: Record<string, string | string[] | undefined> }[];
  /** Set the answer for a path (without query), or a function of the request's JSON body (and the request). */
  answer(path: string, a: StubAnswer | ((json: any, req: IncomingMessage) => StubAnswer)): void;
  close(): Promise<void>;
}

export async function startStubVendor(): Promise<StubVendor> {
  const answers = new Map<string, StubAnswer | ((json: any, req: IncomingMessage) => StubAnswer)>();
  const requests: StubVendor['requests'] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '/').split('?')[0]!;
      requests.push({ method: req.method ?? 'GET', path, url: req.url ?? '/', body, headers: req.headers });
      const a = answers.get(path);
      let json: unknown;
      try {
        json = body ? JSON.parse(body) : undefined;
      } catch {
        json = undefined;
      }
      const answer = typeof a === 'function' ? a(json, req) : (a ?? { status: 404, body: { error: 'no answer set' } });
      const send = () => {
        if (res.destroyed) return;
        if (answer.destroy) {
          req.socket.destroy();
          return;
        }
        res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
        res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
      };
      if (answer.delay_ms) setTimeout(send, answer.delay_ms);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    answer: (path, a) => answers.set(path, a),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
