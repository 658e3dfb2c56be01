import type { ValidateFunction } from "ajv";

/**
 * Validators compiled ahead of time, keyed by their schema's JSON. Empty here; the core's
 * bundle (scripts/bundle.mjs) holds the config schema's and the bundled plugins' schemas, so
 * a command spends no time compiling them.
 */
export const precompiledValidators: ReadonlyMap<string, ValidateFunction> = new Map();
