/** Text the CLI prints: outcomes (human and JSON), dead-letter entries, run summaries, previewed requests. */
import type { Integration, PreviewRequest } from '../engine/index.js';
import type { LineOutcome, LineResult, PipelineResult } from './pipeline.js';
import { safe } from './text.js';

/** One JSON object per outcome: `line`, `event_id` and `status` first, then the outcome's own fields. */
export function outcomeJson(o: LineOutcome): string {
  const { line, event_id, status, ...rest } = o;
  return JSON.stringify({ line, event_id, status, ...rest });
}

/** The label of the vendor's id in human output: the spec's `success.id` when it is a plain name. */
export function responseIdLabel(integration: Integration): string {
  const src = integration.spec.send.responseId?.source;
  return typeof src === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(src) ? src : 'id';
}

/** `line 3  evt_x  delivered  eventInstanceId=…`, or the reason, message and hint of a skip or failure. */
export function outcomeLine(o: LineOutcome, idLabel: string): string {
  const parts = [`line ${o.line}`, o.event_id ?? '-', o.status];
  if (o.status === 'delivered') {
    if (o.response_id !== undefined) parts.push(`${idLabel}=${o.response_id}`);
    if (o.http_status !== undefined) parts.push(`http=${o.http_status}`);
    if (o.attempts > 1) parts.push(`attempts=${o.attempts}`);
    if (o.possibly_duplicated) parts.push('possibly-duplicated');
  } else {
    parts.push(o.reason ?? 'unknown');
    const extra: string[] = [];
    if (o.message) extra.push(o.message);
    if (o.status === 'failed') {
      if (o.http_status !== undefined) extra.push(`HTTP ${o.http_status}`);
      if (o.retryable !== undefined) extra.push(o.retryable ? 'retryable' : 'not retryable');
    }
    if (o.hint) extra.push(`hint: ${o.hint.replace(/\s+/g, ' ').trim()}`);
    if (extra.length) parts.push(extra.join(' — '));
  }
  // One line whatever the event id, message or vendor answer holds.
  return safe(parts.join('  '));
}

/**
 * One dead-letter line: why it failed, and the event to send again — or, when the line never became an
 * event, the line itself: `raw_line` (text) when it is UTF-8, else `raw_line_base64` (its exact bytes),
 * with `raw_line_bytes`; when it was too long to keep, `raw_line` is null and the message names the line.
 * Feeding the file back to `deliver --events` retries the events and re-checks the kept lines.
 */
export function deadLetterJson(r: LineResult, at: Date): string {
  const o = r.outcome;
  const dead_letter = {
    reason: o.reason ?? null,
    message: o.message ?? null,
    hint: o.hint ?? null,
    attempts: o.attempts,
    http_status: o.http_status ?? null,
    line: o.line,
    integration: o.integration,
    failed_at: at.toISOString(),
    event_id: o.event_id,
    retryable: o.retryable ?? null,
    ...(o.possibly_duplicated ? { possibly_duplicated: true } : {}),
  };
  if (r.event !== undefined) return JSON.stringify({ dead_letter, event: r.event });
  return JSON.stringify({ dead_letter, ...rawLineFields(r) });
}

const fatalDecoder = new TextDecoder('utf-8', { fatal: true });

/** How a line that did not become an event is kept: as text when that is exact and compact, else base64. */
function rawLineFields(r: LineResult): { raw_line: string | null; raw_line_base64?: string; raw_line_bytes?: number } {
  if (r.rawBytes === undefined) return r.rawLength === undefined ? { raw_line: null } : { raw_line: null, raw_line_bytes: r.rawLength };
  const bytes = r.rawBytes;
  let text: string | undefined;
  try {
    text = fatalDecoder.decode(bytes);
  } catch {
    text = undefined; // not UTF-8: only base64 keeps it exactly
  }
  // Text unless escaping would more than double it (a line of control characters): the entry stays
  // small enough for `deliver --events` to read back.
  if (text !== undefined && Buffer.byteLength(JSON.stringify(text)) <= 2 * bytes.length + 2) return { raw_line: text, raw_line_bytes: bytes.length };
  return { raw_line: null, raw_line_base64: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'), raw_line_bytes: bytes.length };
}

export interface SummaryInput {
  result: PipelineResult;
  deadLettered: number;
  elapsedMs: number;
  endpoint?: string;
  deadLetterFile?: string;
  deadLetterError?: string;
  readError?: string;
  /** Suggest --dead-letter when something failed without one (default true). */
  suggestDeadLetter?: boolean;
  /** Errors that stopped the run (before the interruption line). */
  errors?: string[];
  /** More lines at the end (the checkpoint, how to resume). */
  notes?: string[];
}

/** The run summary (stderr): counts that add up to the lines read, speed, where requests and dead letters went. */
export function summaryText(s: SummaryInput): string {
  const r = s.result;
  const seconds = s.elapsedMs / 1000;
  const rate = seconds > 0 ? r.linesRead / seconds : r.linesRead;
  const lines: string[] = [];
  lines.push(
    `summary: ${r.linesRead} ${r.linesRead === 1 ? 'line' : 'lines'} read: ${r.delivered} delivered, ${r.skipped} skipped, ${r.failed} failed, ` +
      `${s.deadLettered} dead-lettered, ${r.possiblyDuplicated} possibly duplicated`,
  );
  lines.push(`elapsed ${seconds.toFixed(2)} s, ${rate.toFixed(1)} events/s`);
  if (s.endpoint) lines.push(`endpoint override (--endpoint, an explicit operator option): every request was sent to ${s.endpoint} instead of the spec's hosts`);
  if (s.deadLetterFile) lines.push(`dead letters: ${s.deadLettered} appended to ${s.deadLetterFile}${s.deadLettered ? ` (retry with --events ${s.deadLetterFile})` : ''}`);
  else if (r.failed && s.suggestDeadLetter !== false) lines.push('dead letters: none written (no --dead-letter FILE given)');
  if (s.deadLetterError) lines.push(`error: writing dead letters failed: ${s.deadLetterError}`);
  if (s.readError) lines.push(`error: reading events stopped after line ${r.lastLine}: ${s.readError}`);
  for (const e of s.errors ?? []) lines.push(e);
  if (r.interrupted) {
    const i = r.interrupted;
    lines.push(
      `interrupted by ${i.by}: stopped reading after line ${r.lastLine}; ${i.finishedInGrace} in-flight deliveries finished, ` +
        `${i.aborted} aborted, ${i.queued} not started — ${i.aborted + i.queued} failed with reason interrupted. Resume from line ${r.lastLine + 1}.`,
    );
  }
  for (const extra of s.notes ?? []) lines.push(extra);
  return lines.map(safe).join('\n') + '\n';
}

/** A request as an HTTP message: `# stage`, request line, headers, blank line, body (pretty when JSON). */
export function requestBlock(req: PreviewRequest): string {
  const lines = [`# ${req.stage}`, `${req.method} ${req.url}`];
  for (const [k, v] of Object.entries(req.headers)) lines.push(`${k}: ${v}`);
  if (req.body !== null) {
    lines.push('');
    try {
      // Pretty JSON: its line breaks are ours, and JSON.stringify already escaped those inside strings.
      lines.push(...JSON.stringify(JSON.parse(req.body), null, 2).split('\n'));
    } catch {
      // not JSON (e.g. a form body): as on the wire, control characters escaped
      lines.push(req.body);
    }
  }
  return lines.map(safe).join('\n') + '\n';
}
