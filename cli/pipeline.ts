/**
 * The streaming delivery loop shared by `deliver` and `demo`: read NDJSON lines (bounded read-ahead,
 * never the whole input), turn each into exactly one outcome, deliver with bounded concurrency, and on
 * interruption stop reading, give in-flight deliveries a short grace period, then abort the rest. Every
 * line read ends as one outcome, so the counts always add up to the lines read.
 */
import type { EventTrace } from '../engine/run/trace.js';
import type { Readable } from 'node:stream';
import { DEFAULT_MAX_DEPTH, isBlankLine, parseEventLine, parseJsonSafely, REASONS, type FailedOutcome, type Integration, type Outcome, type SignalEvent, type SkippedOutcome } from '../engine/index.js';
import { readLines, type RawLine } from './ndjson.js';
import { Wake } from '../engine/run/wake.js';

/**
 * A line that does not become an event is kept in its dead letter, byte for byte, when it is at most
 * this long (or --max-line-bytes, when that is larger); a longer one is named by its line number only.
 */
export const DEAD_LETTER_KEEP_BYTES = 4 * 1024 * 1024;

/** The keep cap for a --max-line-bytes. */
export function keepCap(maxLineBytes: number): number {
  return Math.max(maxLineBytes, DEAD_LETTER_KEEP_BYTES);
}

/**
 * How much of one physical line is read: a dead-letter entry fed back holds its line as text or base64
 * plus the reason, so it may be up to about twice the line it keeps.
 */
export function readLimit(maxLineBytes: number): number {
  return 2 * keepCap(maxLineBytes) + 64 * 1024;
}

export const BLANK_LINE = REASONS.blankLine;

export type LineOutcome = Outcome & { line: number };

export interface LineResult {
  outcome: LineOutcome;
  /** The event object, when the line parsed into one. */
  event?: unknown;
  /** The line's exact bytes, when it did not parse into an event and is kept (see DEAD_LETTER_KEEP_BYTES). */
  rawBytes?: Uint8Array;
  /** The line's length, when it did not parse into an event (also when it was too long to keep). */
  rawLength?: number;
}

export interface PipelineOptions {
  integration: Integration;
  source: Readable | AsyncIterable<Buffer | Uint8Array | string>;
  concurrency: number;
  maxLineBytes: number;
  /** Parsed events waiting for a free slot (default: concurrency). */
  readAhead?: number;
  /** Called once per line, as soon as its outcome is known (not in input order). */
  emit: (result: LineResult) => void;
  /** When aborted (reason: the signal's name): stop reading, let in-flight deliveries finish within `graceMs`. */
  stop?: AbortSignal;
  /** When aborted: stop waiting for in-flight deliveries now. */
  hurry?: AbortSignal;
  graceMs: number;
  /** Resolves when the outputs can take more; read no further until it does. */
  writable?: () => Promise<void> | undefined;
  /** Lines an earlier run already gave an outcome (resume): read past, not counted, no outcome. */
  pass?: (line: number) => boolean;
  /** Lines an earlier run may have sent (resume): a send of theirs is flagged possibly_duplicated. */
  maybeSentBefore?: (line: number) => boolean;
  /** Called (synchronously) just before a line's delivery starts. */
  beforeStart?: (line: number) => void;
  /** Trace every delivery (engine/run/trace.ts) and hand each trace here with its line (`deliver --trace`). */
  trace?: (line: number, trace: EventTrace) => void;
}

export interface PipelineResult {
  /** Lines read and given an outcome (lines passed over on a resume are not counted). */
  linesRead: number;
  /** The number of the last line read (absolute: passed-over lines count). */
  lastLine: number;
  /** Lines passed over (an earlier run gave them an outcome). */
  passed: number;
  delivered: number;
  skipped: number;
  failed: number;
  possiblyDuplicated: number;
  /** Set when the run was stopped by `stop`. */
  interrupted?: { by: string; queued: number; aborted: number; finishedInGrace: number };
  /** A read error that ended the input early (the lines before it were all handled). */
  readError?: unknown;
}

interface Item {
  line: number;
  /** Checked by parseEventLine: event_id and event are non-empty strings. */
  event: SignalEvent;
  abandoned: boolean;
}

function signalName(s: AbortSignal | undefined): string {
  return typeof s?.reason === 'string' ? s.reason : 'an interruption';
}

export async function runPipeline(opts: PipelineOptions): Promise<PipelineResult> {
  const { integration } = opts;
  // A batching integration needs a batch's worth of events in flight per request, or batches stay small.
  const concurrency = integration.inFlightWindow(opts.concurrency);
  /** Aborts deliveries still in flight when the grace period after an interruption is over. */
  const abandon = new AbortController();
  let flushed = false;
  const readAhead = Math.max(1, opts.readAhead ?? opts.concurrency);
  const result: PipelineResult = { linesRead: 0, lastLine: 0, passed: 0, delivered: 0, skipped: 0, failed: 0, possiblyDuplicated: 0 };
  const maxLine = opts.maxLineBytes;
  const cap = keepCap(maxLine);
  const wake = new Wake();
  const queue: Item[] = [];
  const inflight = new Set<Item>();
  const stop = opts.stop;
  const stopped = (): boolean => stop?.aborted === true;
  let finishedInGrace = 0;

  // `status` is one of two literals here, which TypeScript does not split into the union's members itself.
  const local = (line: number, fields: Pick<FailedOutcome | SkippedOutcome, 'status' | 'reason' | 'message'> & Partial<Omit<FailedOutcome, 'status' | 'reason'>>): LineOutcome =>
    ({
      event_id: null,
      integration: integration.name,
      vendor: integration.vendor,
      attempts: 0,
      duration_ms: 0,
      ...fields,
      line,
    }) as FailedOutcome & { line: number };

  const emit = (r: LineResult): void => {
    let o = r.outcome;
    // Resumed after a crash: an earlier run may have sent this event already, so whatever this run's
    // send did, the vendor may now hold it twice. (Not for outcomes decided without sending: those are
    // the same in every run.)
    if (!o.possibly_duplicated && r.event !== undefined && opts.maybeSentBefore?.(o.line) && (o.attempts > 0 || o.reason === REASONS.interrupted)) {
      o = { ...o, possibly_duplicated: true };
      r = { ...r, outcome: o };
    }
    if (o.status === 'delivered') result.delivered++;
    else if (o.status === 'skipped') result.skipped++;
    else result.failed++;
    if (o.possibly_duplicated) result.possiblyDuplicated++;
    opts.emit(r);
  };

  /** An event read but not delivered because of a stop: failed, retryable, dead-lettered by the caller. */
  const interrupted = (item: Item, message: string, maybeSent: boolean): void =>
    emit({
      outcome: local(item.line, {
        event_id: item.event.event_id,
        event: item.event.event,
        status: 'failed',
        reason: REASONS.interrupted,
        message,
        retryable: true,
        ...(maybeSent ? { possibly_duplicated: true } : {}),
      }),
      event: item.event,
    });

  /** A line that did not become an event: failed, not retryable, kept for its dead letter when it fits the cap. */
  const invalid = (line: number, message: string, bytes: Uint8Array | undefined, length: number | undefined, event_id?: string): void =>
    emit({
      outcome: local(line, {
        ...(event_id !== undefined ? { event_id } : {}),
        status: 'failed',
        reason: REASONS.invalidEvent,
        message: `line ${line}: ${message}`,
        retryable: false,
      }),
      ...(bytes !== undefined && bytes.length <= cap ? { rawBytes: bytes } : {}),
      ...(length !== undefined ? { rawLength: length } : {}),
    });
  const tooLong = (n: number): string => `line is ${n} bytes, over the limit of ${maxLine} bytes (--max-line-bytes)`;
  const notKept = (line: number): string => `; too long to keep in the dead letter (over ${cap} bytes): take it from line ${line} of the input`;

  const handleLine = (raw: RawLine): void => {
    const line = ++result.lastLine;
    if (opts.pass?.(line)) {
      result.passed++;
      return;
    }
    result.linesRead++;
    if (raw.bytes === undefined) {
      invalid(line, tooLong(raw.oversized) + notKept(line), undefined, raw.oversized);
      return;
    }
    let bytes = raw.bytes;
    if (isBlankLine(bytes)) {
      emit({ outcome: local(line, { status: 'skipped', reason: BLANK_LINE, message: `line ${line} is blank` }) });
      return;
    }
    // A dead-letter entry fed back stands for what it keeps: its event, or its original line (text or
    // base64), which is checked again exactly as when it was first read.
    const env = deadLetterEntry(bytes);
    if (env?.lost !== undefined) {
      invalid(line, `dead-letter entry without its original line (${env.lost}): take it from the original input`, undefined, undefined);
      return;
    }
    if (env) bytes = env.bytes;
    if (bytes.length > maxLine) {
      invalid(line, tooLong(bytes.length) + (bytes.length > cap ? notKept(line) : ''), bytes, bytes.length);
      return;
    }
    const parsed = parseEventLine(bytes, { maxBytes: maxLine });
    if (!parsed.ok) {
      invalid(line, parsed.message, bytes, bytes.length, parsed.event_id);
      return;
    }
    queue.push({ line, event: parsed.event, abandoned: false });
  };

  const start = (item: Item): void => {
    opts.beforeStart?.(item.line);
    inflight.add(item);
    integration
      .deliver(item.event, opts.trace ? { signal: abandon.signal, trace: (t) => opts.trace!(item.line, t) } : { signal: abandon.signal })
      .catch((e: unknown): Outcome => ({
        // deliver() resolves for every per-event problem; this only guards against an engine bug.
        event_id: null,
        status: 'failed',
        integration: integration.name,
        vendor: integration.vendor,
        reason: REASONS.internal,
        message: `internal error: ${e instanceof Error ? e.name : 'unknown'}`,
        retryable: true,
        attempts: 0,
        duration_ms: 0,
      }))
      .then((o) => {
        if (item.abandoned) return;
        inflight.delete(item);
        if (stopped()) finishedInGrace++;
        // The outcome is this line's own: numbered in place rather than copied (same key order).
        const numbered = o as LineOutcome;
        numbered.line = item.line;
        emit({ outcome: numbered, event: item.event });
        wake.notify();
      });
  };

  // ---- reading ----
  const it = readLines(opts.source, readLimit(opts.maxLineBytes))[Symbol.asyncIterator]();
  let eof = false;
  let reading = false;
  let waitingForOutput = false;
  const onStop = (): void => wake.notify();
  stop?.addEventListener('abort', onStop);
  opts.hurry?.addEventListener('abort', onStop);

  const read = (): void => {
    reading = true;
    it.next().then(
      (r) => {
        reading = false;
        if (stopped()) return; // read after the stop: not counted, the operator resumes after the last line reported
        if (r.done) eof = true;
        else handleLine(r.value);
        wake.notify();
      },
      (e: unknown) => {
        reading = false;
        if (stopped()) return;
        result.readError = e;
        eof = true;
        wake.notify();
      },
    );
  };

  let queuedInterrupted = 0;
  let graceTimer: NodeJS.Timeout | undefined;
  let graceOver = false;
  try {
    for (;;) {
      if (stopped()) break;
      while (inflight.size < concurrency && queue.length) start(queue.shift()!);
      if (eof && queue.length === 0) break;
      if (!eof && !reading && !waitingForOutput && queue.length < readAhead) {
        const wait = opts.writable?.();
        if (wait) {
          waitingForOutput = true;
          void wait.then(() => {
            waitingForOutput = false;
            wake.notify();
          });
        } else read();
      }
      await wake.wait();
    }

    // ---- draining ----
    // Nothing more is coming (end of input or a stop): a batching integration sends what it holds now.
    if (!flushed) {
      flushed = true;
      void integration.flush();
    }
    for (;;) {
      if (stopped()) {
        if (queue.length) {
          const by = signalName(stop);
          for (const item of queue.splice(0)) {
            queuedInterrupted++;
            interrupted(item, `not sent: interrupted by ${by} before its delivery started`, false);
          }
        }
        if (!graceTimer && inflight.size) {
          graceTimer = setTimeout(() => {
            graceOver = true;
            wake.notify();
          }, opts.graceMs);
        }
      }
      if (inflight.size === 0) break;
      if (stopped() && (graceOver || opts.hurry?.aborted)) break;
      await wake.wait();
    }

    let aborted = 0;
    if (inflight.size) {
      const by = signalName(stop);
      const seconds = Math.round(opts.graceMs / 100) / 10;
      for (const item of inflight) item.abandoned = true;
      abandon.abort();
      for (const item of [...inflight]) {
        aborted++;
        inflight.delete(item);
        interrupted(item, `aborted: still in flight ${seconds} s after ${by}; the vendor may have received it`, true);
      }
    }
    if (stopped()) result.interrupted = { by: signalName(stop), queued: queuedInterrupted, aborted, finishedInGrace };
  } finally {
    if (graceTimer) clearTimeout(graceTimer);
    stop?.removeEventListener('abort', onStop);
    opts.hurry?.removeEventListener('abort', onStop);
    if (stopped() || result.readError !== undefined) {
      // Stop the producer: a pending read settles (and is ignored), the file or stdin is released.
      const src = opts.source as Partial<Readable>;
      if (typeof src.destroy === 'function') src.destroy();
      if (reading) {
        // Nothing else will consume this generator: let its pending step settle quietly.
        void it.return?.(undefined).catch(() => undefined);
      }
    }
  }
  return result;
}

const fatalDecoder = new TextDecoder('utf-8', { fatal: true });
const MARK = Buffer.from('"dead_letter"');

/**
 * When the line is a dead-letter entry (an object with a `dead_letter` key): the bytes of the line it
 * stands for — its event as JSON, or its kept raw line — or, when it kept none, what it says was lost.
 * Anything else (not JSON, no such key): undefined, the line is read as it is.
 */
export function deadLetterEntry(bytes: Uint8Array): { bytes: Uint8Array; lost?: undefined } | { lost: string; bytes?: undefined } | undefined {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.indexOf(MARK) === -1) return undefined;
  let text: string;
  try {
    text = fatalDecoder.decode(buf);
  } catch {
    return undefined;
  }
  const parsed = parseJsonSafely(text, { maxDepth: DEFAULT_MAX_DEPTH + 1 }); // the envelope adds one level
  if (!parsed.ok) return undefined;
  const v = parsed.value as Record<string, unknown>;
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !('dead_letter' in v)) return undefined;
  if (typeof v.event === 'object' && v.event !== null && !Array.isArray(v.event)) return { bytes: Buffer.from(JSON.stringify(v.event), 'utf8') };
  if (typeof v.raw_line_base64 === 'string') return { bytes: Buffer.from(v.raw_line_base64, 'base64') };
  if (typeof v.raw_line === 'string') return { bytes: Buffer.from(v.raw_line, 'utf8') };
  const dl = v.dead_letter as Record<string, unknown> | null;
  const was = typeof dl === 'object' && dl !== null && typeof dl.line === 'number' ? `it was line ${dl.line}` : 'no raw_line';
  const size = typeof v.raw_line_bytes === 'number' ? `, ${v.raw_line_bytes} bytes` : '';
  return { lost: was + size };
}
