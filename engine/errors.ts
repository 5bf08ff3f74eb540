/**
 * One error hierarchy for the whole project. Every error carries a stable, namespaced `code` so the
 * runtime and the CLI can branch on it without parsing messages. Messages never contain secrets:
 * whoever builds one from vendor text passes it through the integration's redactor first.
 *
 * SignalError
 * ├─ SpecError            spec.invalid         every located problem of a spec
 * ├─ RecordError          record.invalid       every bad field of an integration record
 * ├─ DeliveryError        per-event reasons    always turned into a failed outcome (REASONS)
 * ├─ ExpressionSyntaxError / ExpressionEvalError   expression.syntax / expression.eval
 * ├─ TemplateSyntaxError / TemplateValueError      template.syntax / template.value
 * ├─ MappingError         mapping.invalid
 * └─ CliError             cli.usage / cli.failed (cli/io.ts)
 */

export class SignalError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SignalError';
    this.code = code;
  }
}

/** Where a problem sits in a spec file, in the `file:line:col` convention editors understand. */
export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  /** Key path inside the document, e.g. `send.request.body.user_key`. */
  path: string;
  message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = d.path ? ` (at ${d.path})` : '';
  return `${d.file}:${d.line}:${d.col}: ${d.message}${where}`;
}

/** A spec failed to load; lists every problem found, not just the first. */
export class SpecError extends SignalError {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[]) {
    super('spec.invalid', diagnostics.map(formatDiagnostic).join('\n'));
    this.name = 'SpecError';
    this.diagnostics = diagnostics;
  }
}

/**
 * One problem with an input (a record or an event), structured for programs: where it is, which rule it
 * broke, and what to do — never the value, so a secret cannot leak through it.
 */
export interface InputProblem {
  /** Dotted path inside the input, e.g. `config.account_id`; `''` for the input as a whole. */
  path: string;
  /**
   * The rule that failed: a JSON Schema keyword (`required`, `type`, `pattern`, `additionalProperties`,
   * `enum`, ...) or one of the engine's own checks: `spec` (no spec for the vendor), `preset` (no such
   * preset), `expression` (a field mapping that does not compile or names an unknown value).
   */
  keyword: string;
  /** What is wrong, for people. */
  message: string;
}

/** `path: message`, the line the CLI prints for one problem. */
export function formatProblem(p: InputProblem): string {
  return p.path ? `${p.path}: ${p.message}` : p.message;
}

/** An integration record does not fit its spec; lists every bad field, never a field's value. */
export class RecordError extends SignalError {
  /** Every problem as one line (`path: message`). */
  readonly problems: string[];
  /** Every problem, structured: path, keyword, message. */
  readonly issues: InputProblem[];
  constructor(subject: string, issues: InputProblem[]) {
    const problems = issues.map(formatProblem);
    super('record.invalid', `${subject}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'RecordError';
    this.problems = problems;
    this.issues = issues;
  }
}

/** A per-event failure raised while mapping, checking or sending; always turned into a `failed` outcome. */
export class DeliveryError extends SignalError {
  declare readonly code: Reason;
  readonly retryable: boolean;
  readonly hint: string | undefined;
  readonly http_status: number | undefined;
  readonly vendor_code: string | number | undefined;
  readonly vendor_message: string | undefined;
  /** For `invalid_event` from `parseEvent`: every problem of the event, structured. */
  readonly issues: InputProblem[];
  constructor(
    code: Reason,
    message: string,
    details: {
      retryable?: boolean;
      hint?: string;
      http_status?: number;
      vendor_code?: string | number;
      vendor_message?: string;
      issues?: InputProblem[];
      cause?: unknown;
    } = {},
  ) {
    super(code, message, { cause: details.cause });
    this.name = 'DeliveryError';
    this.retryable = details.retryable ?? false;
    this.hint = details.hint;
    this.http_status = details.http_status;
    this.vendor_code = details.vendor_code;
    this.vendor_message = details.vendor_message;
    this.issues = details.issues ?? [];
  }
}

/**
 * Codes of failed and skipped outcomes (`Outcome.reason`), in one place so docs and tests can enumerate
 * them. A code, once released, keeps its meaning (docs/api.md); new ones may be added in a minor version.
 */
export const REASONS = {
  /** Skipped: the record says `enabled: false`. */
  disabled: 'integration_disabled',
  /** Skipped: a consent category the integration requires is not `true` on the event. */
  consent: 'consent_not_granted',
  /** Skipped: the event is not among those the record (`events`) or its preset forwards. */
  notForwarded: 'event_not_forwarded',
  /** Failed, not retryable: not a Signal event (no valid `type`, `event` or `event_id`; `properties` or `consent` not an object; a CLI line that is not a usable event). */
  invalidEvent: 'invalid_event',
  /** Failed, not retryable: an expression failed, a spread was not an object, a placeholder had no value, a method template rendered no method. */
  mapping: 'mapping_error',
  /** Failed, not retryable: one of the spec's `send.checks` refused the event (its message says which). */
  check: 'check_failed',
  /** Failed, not retryable: the templated URL is invalid or its host is not in the spec's `allowed_hosts`. */
  hostNotAllowed: 'host_not_allowed',
  /** Failed: the vendor answered with an HTTP status the spec's error rules call a failure; `retryable` says whether a later try could succeed. */
  http: 'http_error',
  /** Failed: no answer (connection refused, reset, timeout...); `retryable` per the spec's rules. */
  network: 'network_error',
  /** Failed: an auth stage (e.g. the token request) failed, retryable per the spec's rules, or gave no value for one of its `result` outputs (retryable). */
  auth: 'auth_failed',
  /** Failed, retryable: the delivery was aborted (its signal, `shutdown()` past its deadline, `close()`, CLI SIGINT/SIGTERM) or refused while shutting down. */
  interrupted: 'interrupted',
  /** Skipped: an empty input line (NDJSON), not an event. */
  blankLine: 'blank_line',
  /** Failed, not retryable: the batch answer (`results`, `item_errors`) or its processing (`poll`) rejected this event's item. */
  itemRejected: 'item_rejected',
  /** Failed, not retryable: this event's item alone exceeds the spec's `batch.max_bytes`. */
  itemTooLarge: 'item_too_large',
  /** Failed, not retryable: the vendor accepted the batch but its answer does not fit the spec's `results.items` / `item_errors` / `poll` (every event of the batch, `possibly_duplicated`). */
  batchResults: 'batch_results_invalid',
  /** Failed, retryable: an unexpected error inside the engine (a bug, an `onOutcome` hook that threw). */
  internal: 'internal_error',
  /** Failed, retryable: the shared store (Redis) holding tokens and rate limits did not answer. */
  store: 'store_unavailable',
  /** Failed, retryable: (fleet) the queued event was enqueued for another record id or account; nothing is sent. */
  recordMismatch: 'record_mismatch',
  /** Failed, not retryable: (fleet) the queued message is sealed with a `SIGNAL_STORE_KEY` this worker does not have; nothing is sent. */
  sealedUnreadable: 'sealed_unreadable',
} as const;

/** The union of every outcome reason (`Outcome.reason`); each value is documented on {@link REASONS}. */
export type Reason = (typeof REASONS)[keyof typeof REASONS];
