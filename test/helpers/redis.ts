/**
 * A real Redis for one test file: `redis-server` (Debian package) on a free loopback port, no persistence,
 * stopped when the test file ends. Never assumes one is running. Under `CI` a missing `redis-server` is an
 * error (the run fails); `.ci/run` installs it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  url: string;
  port: number;
  /** The redis-server process (SIGSTOP freezes it: it keeps its connections and answers nothing). */
  pid: number;
  /** Stop the server and remove its folder. */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'signal-redis-'));
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const child: ChildProcess = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--logfile', ''],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
    let up = false;
    for (let i = 0; i < 100 && !up; i++) {
      const failed = await Promise.race([spawnError, new Promise<null>((r) => setTimeout(() => r(null), 50))]);
      if (failed) {
        rmSync(dir, { recursive: true, force: true });
        throw new Error(`cannot start redis-server (${failed.message}): install the Debian package 'redis-server' (.ci/run does)`);
      }
      if (child.exitCode !== null) break;
      up = await answersPing(port);
    }
    if (up) {
      return {
        port,
        pid: child.pid!,
        url: `redis://127.0.0.1:${port}`,
        stop: async () => {
          if (child.exitCode === null) {
            const exited = new Promise((r) => child.once('exit', r));
            child.kill('SIGTERM');
            await Promise.race([exited, new Promise((r) => setTimeout(r, 3_000))]);
            if (child.exitCode === null) child.kill('SIGKILL');
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill('SIGKILL');
    // Port taken between probe and bind: try another, a few times.
    if (tries >= 3) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error('redis-server did not start on a free loopback port');
    }
  }
}
