/**
 * A trivial vendor for the client bench, run in its own process: a token for any path ending in /token,
 * 201 with a tiny JSON body for anything else. It does as little as a server can, so that the client side's
 * CPU is what the bench measures (the emulator validates, records and echoes every request).
 */
import http from 'node:http';

const TOKEN = JSON.stringify({ access_token: 'bench-token', token_type: 'Bearer', expires_in: 1080, scope: 'bench' });
const ACCEPTED = '{"eventInstanceId":"00000000-0000-0000-0000-000000000000"}';

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  req.resume();
  req.once('end', () => {
    const body = req.url?.endsWith('/token') ? TOKEN : ACCEPTED;
    res.writeHead(req.url?.endsWith('/token') ? 200 : 201, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address() as { port: number };
  process.stdout.write(`listening on http://127.0.0.1:${a.port}\n`);
});
process.once('SIGTERM', () => server.close(() => process.exit(0)));
