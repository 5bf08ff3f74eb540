/** Public API of signal-integrations. */
export { Engine, type EngineOptions, type CreateIntegrationOptions, type SpecSources } from './engine.js';
export { Integration, type PreviewRequest, type DeliverOptions, applyEndpoint } from './run/integration.js';
export type { Outcome, OutcomeStatus, OutcomeDetail } from './run/outcome.js';
export type { SignalEvent } from './run/event.js';
export type { IntegrationRecord } from './validate/record.js';
export type { CompiledSpec } from './compile/spec.js';
export type * from './spec/types.js';
export { checkSpecs, checkSpecFile, checkSpecText, loadSpecs, type SpecText } from './load/specs.js';
export { SignalError, SpecError, RecordError, DeliveryError, REASONS, formatDiagnostic, type Diagnostic, type Reason } from './errors.js';
export { BUNDLED_SPECS_DIR, packagePath } from './paths.js';
export { DEFAULT_RETRY_POLICY, type RetryPolicy } from './policy/retry-delay.js';
export { parseEventLine, parseJsonSafely, isBlankLine, DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_DEPTH, type EventLineOptions, type EventLineResult } from './run/event-line.js';
export type { Store, TokenStore, RateLimitStore, Limiter, CachedToken, TokenFetch } from './store/types.js';
export { createMemoryStore } from './store/memory.js';
export { createRedisStore, type RedisStore, type RedisStoreOptions } from './store/redis.js';
