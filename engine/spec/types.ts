/**
 * The integration spec language, as the engine sees it after YAML parsing and schema validation.
 * schemas/integration-spec.schema.json is the authoritative description of the same shape;
 * docs/spec-language.md explains it with examples.
 *
 * Expression kinds:
 * - `Expr`: a JSONata expression. Its input depends on where it stands (the Signal event for request
 *   mappings, the response body for `result`/`success`/`vendor_error`, the built body for `checks`);
 *   bindings are `$config` (the record's config), `$event`, `$auth` (results of earlier auth stages, by
 *   stage name), `$fields` (the preset's fields for this event), and in batches `$items` / `$response`.
 * - `Template`: literal text with `{expression}` placeholders (URLs, header values). In URLs every
 *   placeholder value is percent-encoded, so a value can never change the URL's structure — except a
 *   placeholder that starts the URL, which must yield a whole origin (checked, then matched to allowed_hosts).
 * - `Mapping`: an ordered object whose string leaves are `Expr`s, numbers/booleans/null are constants,
 *   nested objects are mappings, and a `"..."` key spreads the object its expression returns.
 *   Keys whose expression yields nothing (undefined) are left out.
 */

export type Expr = string;
export type Template = string;
export interface Mapping {
  [key: string]: Expr | number | boolean | null | Mapping;
}

/** A JSON Schema (draft 2020-12) object; config properties may carry `secret: true`. */
export type JsonSchema = Record<string, unknown>;

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RequestSpec {
  /** A method, or a template that renders to one (e.g. chosen by a config field). */
  method: HttpMethod | Template;
  url: Template;
  headers?: Record<string, Template>;
  /** JSON body (default) or form-urlencoded. */
  body?: Mapping;
  encoding?: 'json' | 'form';
}

export type StatusMatch = number | string; // 401, or a class such as "5xx"

export interface ErrorRule {
  when: {
    status?: StatusMatch | StatusMatch[];
    /** Vendor error code(s), as extracted by the stage's `vendor_error.code`. */
    code?: string | number | (string | number)[];
    /** Case-insensitive substring of the vendor message (or the raw body when no message is extracted). */
    message_contains?: string;
    /** true: any network error; or a list of error codes such as ECONNRESET, ETIMEDOUT. */
    network?: boolean | string[];
  };
  /** `split` (batched sends only): the batch was too large; send it again in halves. */
  action: 'retry' | 'reauth' | 'fail' | 'split';
  hint?: string;
}

export interface VendorErrorSpec {
  /** Expressions over the parsed error body. */
  code?: Expr;
  message?: Expr;
  /** Seconds to wait, from the body (wins over backoff, like Retry-After). */
  retry_after?: Expr;
  /** The response header carrying the delay: `seconds` to wait (default) or `epoch`, the Unix time the limit resets. */
  retry_after_header?: { name: string; format?: 'seconds' | 'epoch' };
}

/** OAuth 2.0 client authentication (RFC 6749 §2.3.1) for an auth stage's request. */
export interface ClientAuthSpec {
  /** `basic`: an `Authorization: Basic` header (client_secret_basic); `post`: `client_id`/`client_secret` in the form body (client_secret_post). */
  method: 'basic' | 'post';
  /** The client identifier and secret, expressions over the config (and earlier stages' `$auth`). */
  id: Expr;
  secret: Expr;
}

export interface AuthStageSpec {
  name: string;
  request: RequestSpec;
  /** Client authentication added to the request, encoded by the engine. */
  client_auth?: ClientAuthSpec;
  /** The `token_type` the answer must state (compared case-insensitively); any other fails the stage permanently. */
  token_type?: string;
  /** Named outputs, expressions over the response body; available to later stages as $auth.<name>.<output>. Secrets unless listed in `public`. */
  result: Record<string, Expr>;
  /** Outputs that are not secrets (an instance URL, a region host): shown in previews, outcomes and errors. */
  public?: string[];
  /** Token lifetime in seconds, an expression over the response body. */
  expires_in?: Expr;
  /** Lifetime to assume when the response states none; without it such a result is kept until a `reauth` drops it. */
  default_expires_in?: number;
  /** Config fields whose values key the token cache (tokens are never shared across different keys). */
  cache_key: string[];
  success?: { status?: StatusMatch[] };
  vendor_error?: VendorErrorSpec;
  errors?: ErrorRule[];
}

export interface CheckSpec {
  /** Expression over the built request body; the event is not sent unless it is true. */
  that: Expr;
  message: string;
  hint?: string;
}

export interface BatchResultsSpec {
  /** Per-item results in the batch's response body, in the order of the items sent. */
  items?: Expr;
  /** Over one result item: true when that item was accepted (default: true). */
  ok?: Expr;
  id?: Expr;
  message?: Expr;
  code?: Expr;
  /** Hint for the operator when an item is rejected. */
  hint?: string;
}

export interface BatchPollSpec {
  /** Whether to poll at all, over the config (e.g. a config switch); default true. */
  when?: Expr;
  /** Status request; `$response` is the accepted batch's response body. */
  status: RequestSpec;
  /** Over the status body: processing has finished. */
  done: Expr;
  interval_ms?: number;
  max_wait_ms?: number;
  /** Results request, made once done; `$response` as above, `$status` the last status body, `$page` 1, 2, ... */
  results: RequestSpec;
  /** Over a results body (with `$page`): another page follows. Default: a single page. */
  more?: Expr;
  /** Over the results body: the list of rejected items. */
  errors: Expr;
  /** Over one error entry: the 0-based index of the item it is about. */
  index: Expr;
  message?: Expr;
  code?: Expr;
  hint?: string;
}

/** Batch answers that list only the rejected items, each with the index of the item it is about. */
export interface BatchItemErrorsSpec {
  /** Over the response body: the list of rejected items (absent or null: none). */
  list: Expr;
  /** Over one entry: the 0-based index of the item it is about. */
  index: Expr;
  code?: Expr;
  message?: Expr;
  hint?: string;
  /** Statuses that are not a success but whose answer is read for the list (the other items were accepted). */
  status?: StatusMatch[];
  /**
   * What such a non-success answer means for the items it does not list: `delivered` (the vendor took them,
   * the default), `resend` (it took nothing: they are sent once more, without the listed ones) or `failed`.
   */
  others?: 'delivered' | 'resend' | 'failed';
}

export interface BatchSpec {
  /** Default: no count limit (only `max_bytes`). Or `$config.<field>`: each record's own limit (a plan's). */
  max_items?: number | string;
  max_bytes?: number | string;
  max_wait_ms?: number;
  /** Batch requests in flight at once per integration (default 4). */
  max_in_flight?: number;
  /** Reshapes each event's body (`send.request.body`, the input here) into one item; default: the body as it is. */
  item?: Mapping;
  /** The request body; `$items` is the array of items, `$group` the group_by value. An expression (`$items`) sends the bare list. */
  body: Mapping | Expr;
  results?: BatchResultsSpec;
  item_errors?: BatchItemErrorsSpec;
  poll?: BatchPollSpec;
  /**
   * Over each event (with $config, $event, $fields): events with different values go in different requests;
   * bound as $group in `body`. A list of expressions groups by all of them, and $group is the list of values.
   */
  group_by?: Expr | Expr[];
}

export interface SendStageSpec {
  request: RequestSpec;
  checks?: CheckSpec[];
  success?: {
    status?: StatusMatch[];
    /** The vendor's id for the delivered event, an expression over the response body. */
    id?: Expr;
    /** Extra fields kept in the outcome, expressions over the response body. */
    keep?: Record<string, Expr>;
  };
  vendor_error?: VendorErrorSpec;
  errors?: ErrorRule[];
  batch?: BatchSpec;
}

export interface PresetEventSpec {
  /** Fields this event adds, bound as $fields where the send body spreads them. */
  fields?: Mapping;
}

export interface PresetSpec {
  title?: string;
  description?: string;
  default?: boolean;
  events: Record<string, PresetEventSpec>;
}

export interface RateLimitSpec {
  /** Config fields whose values identify the vendor's rate-limit bucket: records agreeing on them share one budget. */
  scope?: string[];
  /** Default limit for records that set no `rate_limit` of their own. */
  requests_per_minute?: number;
}

export interface IntegrationSpec {
  /** Another spec file (relative path) whose keys this one inherits, merged as a JSON Merge Patch. */
  extends?: string;
  spec_version: 1;
  vendor: string;
  title: string;
  version: string;
  description?: string;
  config: JsonSchema;
  consent_categories?: string[];
  allowed_hosts: string[];
  timeouts?: { connect_ms?: number; response_ms?: number };
  rate_limit?: RateLimitSpec;
  presets?: Record<string, PresetSpec>;
  auth?: AuthStageSpec[];
  send: SendStageSpec;
}
