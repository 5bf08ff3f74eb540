/** Types for derive-extends-schema.mjs (a plain Node script, so that it runs without a build). */

/** The relaxed schema for files that `extends` another (and partials): `main` with every `required` list removed. */
export function deriveExtendsSchema(main: Record<string, unknown>): Record<string, unknown>;

/** Absolute path of schemas/integration-spec.schema.json. */
export const MAIN: string;

/** Absolute path of schemas/integration-spec-extends.schema.json. */
export const DERIVED: string;
