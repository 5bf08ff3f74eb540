/**
 * `deliver`'s machine-readable summary (one JSON line, on stderr with --json or in --summary-json FILE)
 * and its progress line (stderr, only when stderr is a terminal).
 */
import type { Output } from './io.js';
import type { PipelineResult } from './pipeline.js';

export interface SummaryJsonInput {
  result: PipelineResult;
  deadLettered: number;
  elapsedMs: number;
  exitCode: number;
  endpoint?: string;
  deadLetterFile?: string;
  deadLetterError?: string;
  readError?: string;
}

/** `{"summary": {...}}`: the same counts as the text summary, for scripts and log pipelines. */
export function summaryJson(s: SummaryJsonInput): string {
  const r = s.result;
  const seconds = s.elapsedMs / 1000;
  return JSON.stringify({
    summary: {
      lines_read: r.linesRead,
      delivered: r.delivered,
      skipped: r.skipped,
      failed: r.failed,
      dead_lettered: s.deadLettered,
      possibly_duplicated: r.possiblyDuplicated,
      elapsed_ms: Math.round(s.elapsedMs),
      events_per_s: Math.round((seconds > 0 ? r.linesRead / seconds : r.linesRead) * 10) / 10,
      exit_code: s.exitCode,
      ...(s.endpoint ? { endpoint: s.endpoint } : {}),
      ...(s.deadLetterFile ? { dead_letter_file: s.deadLetterFile } : {}),
      ...(s.deadLetterError ? { dead_letter_error: s.deadLetterError } : {}),
      ...(s.readError ? { read_error: s.readError } : {}),
      ...(r.interrupted ? { interrupted: { by: r.interrupted.by, finished_in_grace: r.interrupted.finishedInGrace, aborted: r.interrupted.aborted, not_started: r.interrupted.queued, resume_from_line: r.linesRead + 1 } } : {}),
    },
  });
}

export function isTerminal(out: Output): boolean {
  return (out as { isTTY?: boolean }).isTTY === true;
}

/**
 * A progress line on `out` (stderr), redrawn in place once a second: counts so far and the rate. Does
 * nothing when `out` is not a terminal. When the outcomes (`lines`, stdout) go to the same terminal, the
 * line is wiped before each outcome is printed and comes back on the next tick.
 */
export function progress(out: Output, lines?: Output): { count(status: 'delivered' | 'skipped' | 'failed'): void; stop(): void } {
  const counts = { delivered: 0, skipped: 0, failed: 0 };
  if (!isTerminal(out)) return { count: () => undefined, stop: () => undefined };
  const shared = lines !== undefined && isTerminal(lines);
  let drawn = false;
  const started = Date.now();
  const draw = () => {
    drawn = true;
    const n = counts.delivered + counts.skipped + counts.failed;
    const s = (Date.now() - started) / 1000;
    out.write(`\r\x1b[2K${n} events: ${counts.delivered} delivered, ${counts.skipped} skipped, ${counts.failed} failed — ${(s > 0 ? n / s : 0).toFixed(0)} events/s`);
  };
  const timer = setInterval(draw, 1000);
  timer.unref();
  return {
    count: (status) => {
      counts[status]++;
      if (shared && drawn) {
        out.write('\r\x1b[2K');
        drawn = false;
      }
    },
    stop: () => {
      clearInterval(timer);
      if (drawn) out.write('\r\x1b[2K');
    },
  };
}
