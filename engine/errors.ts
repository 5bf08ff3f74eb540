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

/** An integration record does not fit its spec; lists every bad field, never a field's value. */
export class RecordError extends SignalError {
  readonly problems: string[];
  constructor(subject: string, problems: string[]) {
    super('record.invalid', `${subject}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'RecordError';
    this.problems = problems;
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
  constructor(
    code: Reason,
    message: string,
    details: {
      retryable?: boolean;
      hint?: string;
      http_status?: number;
      vendor_code?: string | number;
      vendor_message?: string;
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
  }
}

/** Codes of failed and skipped outcomes, in one place so docs and tests can enumerate them. */
export const REASONS = {
  disabled: 'integration_disabled',
  consent: 'consent_not_granted',
  notForwarded: 'event_not_forwarded',
  invalidEvent: 'invalid_event',
  mapping: 'mapping_error',
  check: 'check_failed',
  hostNotAllowed: 'host_not_allowed',
  http: 'http_error',
  network: 'network_error',
  auth: 'auth_failed',
  interrupted: 'interrupted',
  blankLine: 'blank_line',
  itemRejected: 'item_rejected',
  itemTooLarge: 'item_too_large',
  batchResults: 'batch_results_invalid',
  internal: 'internal_error',
  store: 'store_unavailable',
  recordMismatch: 'record_mismatch',
  sealedUnreadable: 'sealed_unreadable',
} as const;

/** The union of every outcome reason (`Outcome.reason`). */
export type Reason = (typeof REASONS)[keyof typeof REASONS];
