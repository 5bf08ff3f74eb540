/**
 * The program a compiled spec is: what stage 3 (compile/spec.ts) produces and stage 4 (engine/run/) runs.
 * Every expression, template and mapping here is already compiled; nothing is parsed per event.
 */
import type { ValidateFunction } from 'ajv/dist/2020.js';
import type { FunctionSet } from './builtins.js';
import type { ErrorRule, HttpMethod, IntegrationSpec, JsonSchema } from '../spec/types.js';
import type { CompiledExpr } from './expression.js';
import type { CompiledMapping } from './mapping.js';
import type { ReferenceScope } from './references.js';
import type { TemplateContext, TemplatePart } from './template.js';

export interface CompiledTemplate {
  source: string;
  context: TemplateContext;
  /** A URL template whose first placeholder is a whole origin (`{$auth.login.instance_url}/path`). */
  origin: boolean;
  parts: TemplatePart[];
  exprs: CompiledExpr[];
}

export interface CompiledRequest {
  /** A fixed method, or a template rendering to one. */
  method: HttpMethod | CompiledTemplate;
  url: CompiledTemplate;
  headers: { name: string; value: CompiledTemplate }[];
  body: CompiledMapping | undefined;
  encoding: 'json' | 'form';
  /** The spec sets Content-Type itself; otherwise the engine adds one for the encoding. */
  hasContentType: boolean;
}

export type RuleAction = ErrorRule['action'];

export interface CompiledRule {
  status?: (status: number) => boolean;
  codes?: ReadonlySet<string>;
  messageContains?: string;
  network?: true | ReadonlySet<string>;
  action: RuleAction;
  hint?: string;
  /** Where the rule came from, for messages: `send.errors[2]` or `default`. */
  origin: string;
}

export interface CompiledVendorError {
  code?: CompiledExpr;
  message?: CompiledExpr;
  retryAfter?: CompiledExpr;
  /** The response header that carries the retry delay (lowercase name). */
  retryAfterHeader?: { name: string; format: 'seconds' | 'epoch' };
}

export interface CompiledAuthStage {
  name: string;
  request: CompiledRequest;
  /** RFC 6749 §2.3.1 client authentication, added to the request when it is sent. */
  clientAuth?: { method: 'basic' | 'post'; id: CompiledExpr; secret: CompiledExpr };
  /** The token_type the answer must state (compared case-insensitively); another fails the stage permanently. */
  tokenType?: string;
  result: { name: string; expr: CompiledExpr }[];
  /** Outputs that are not secrets. */
  publicOutputs: ReadonlySet<string>;
  expiresIn?: CompiledExpr;
  /** Lifetime when the response states none; Infinity: kept until a `reauth` drops it. */
  defaultExpiresIn: number;
  /** The send or poll requests read this stage's outputs themselves (not only through a later stage). */
  readBySend: boolean;
  cacheKey: string[];
  success: (status: number) => boolean;
  vendorError: CompiledVendorError;
  rules: CompiledRule[];
}

export interface CompiledCheck {
  that: CompiledExpr;
  message: string;
  hint?: string;
}

export interface CompiledBatch {
  max_items: number;
  max_bytes: number;
  /** Config fields holding each record's own `max_items` / `max_bytes` (checked when a record is). */
  limitFields?: { max_items?: string; max_bytes?: string };
  max_wait_ms: number;
  max_in_flight: number;
  item?: CompiledMapping;
  body: CompiledMapping;
  results?: {
    items?: CompiledExpr;
    ok?: CompiledExpr;
    id?: CompiledExpr;
    message?: CompiledExpr;
    code?: CompiledExpr;
    hint?: string;
  };
  itemErrors?: {
    list: CompiledExpr;
    index: CompiledExpr;
    code?: CompiledExpr;
    message?: CompiledExpr;
    hint?: string;
    /** Non-success statuses whose answer is still read for the list; undefined: none. */
    status?: (status: number) => boolean;
    /** What such an answer means for the items it does not list. */
    others: 'delivered' | 'resend' | 'failed';
  };
  /** One expression, or several (a list: `$group` is then the list of their values). */
  groupBy?: CompiledExpr | CompiledExpr[];
  poll?: {
    when?: CompiledExpr;
    status: CompiledRequest;
    done: CompiledExpr;
    interval_ms: number;
    max_wait_ms: number;
    results: CompiledRequest;
    more?: CompiledExpr;
    errors: CompiledExpr;
    index: CompiledExpr;
    message?: CompiledExpr;
    code?: CompiledExpr;
    hint?: string;
  };
}

export interface CompiledSendStage {
  /** Present when events are sent in batches: `request.body` then maps one event, `batch.body` the request. */
  batch?: CompiledBatch;
  request: CompiledRequest;
  checks: CompiledCheck[];
  success: (status: number) => boolean;
  responseId?: CompiledExpr;
  keep: { name: string; expr: CompiledExpr }[];
  vendorError: CompiledVendorError;
  rules: CompiledRule[];
}

export interface CompiledPreset {
  name: string;
  title: string;
  events: Map<string, CompiledMapping>;
}

export interface CompiledSpec {
  file: string;
  spec: IntegrationSpec;
  vendor: string;
  title: string;
  version: string;
  configSchema: JsonSchema;
  configFields: ReadonlySet<string>;
  secretFields: ReadonlySet<string>;
  validateConfig: ValidateFunction;
  consentCategories: string[];
  allowedHosts: string[];
  timeouts: { connect_ms: number; response_ms: number };
  /** What the rate limit is counted by (`scope`, config fields) and the spec's default limit. */
  rateLimit: { scope: string[]; requests_per_minute?: number };
  presets: Map<string, CompiledPreset>;
  defaultPreset: string | undefined;
  auth: CompiledAuthStage[];
  send: CompiledSendStage;
  /** Scope for expressions supplied later by integration records (field_mappings). */
  recordScope: ReferenceScope;
  /** The functions its expressions were compiled with (a record's field_mappings get the same). */
  functions: FunctionSet;
}

/** Defaults every spec inherits after its own rules: transient failures retry, other client errors fail. */
export const DEFAULT_RULES: CompiledRule[] = [
  {
    network: true,
    action: 'retry',
    origin: 'default',
    hint: 'The vendor could not be reached (connection refused, reset or timed out) even after retries: check connectivity to its host (or the endpoint override), then send the dead letters again.',
  },
  {
    status: (s) => s === 429,
    action: 'retry',
    origin: 'default',
    hint: 'The vendor kept throttling after retries: set rate_limit.requests_per_minute on the integration below its limit, or ask the vendor for a higher one; then send the dead letters again.',
  },
  {
    status: (s) => [408, 500, 502, 503, 504].includes(s),
    action: 'retry',
    origin: 'default',
    hint: 'The vendor kept failing or timing out after retries; this is usually temporary: send the dead letters again later.',
  },
  { status: () => true, action: 'fail', origin: 'default', hint: "The vendor refused the request: its message (vendor_message) says why." },
];

/** Connect and response timeouts a spec gets unless it sets its own. */
export const DEFAULT_TIMEOUTS = { connect_ms: 5_000, response_ms: 30_000 };
