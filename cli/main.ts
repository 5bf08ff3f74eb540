#!/usr/bin/env node
/** The `signal-integrations` bin: run the CLI against the process's streams, then exit with its code. */
import { run } from './run.js';

// A closed pipe (`... | head`) is not a reason to stop mid-delivery: further output is dropped and the
// command still finishes its work, its dead letters and its summary. Never crash on an output error.
let outputFailed = false;
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ERR_STREAM_DESTROYED') outputFailed = true;
  });
}

let code = await run(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });
if (outputFailed && code === 0) code = 1;
process.exitCode = code;
// The command has finished and closed what it opened (files, sockets, emulator). Exit once the output is
// flushed rather than wait for the event loop to drain: after an interruption, deliveries abandoned at
// the shutdown timeout may still hold sockets or retry timers, and they must not outlive the command.
const flush = (s: NodeJS.WriteStream): Promise<void> => new Promise((resolve) => s.write('', () => resolve()));
await Promise.race([Promise.all([flush(process.stdout), flush(process.stderr)]), new Promise((r) => setTimeout(r, 2000).unref())]);
process.exit(code);
