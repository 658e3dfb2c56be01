/**
 * Errors are values with a code, a message a user can act on, and the cause attached.
 * The CLI prints `message` alone (one line) unless asked to be verbose.
 */
export type ErrorCode =
	| "CONFIG_INVALID"
	| "PLUGIN_LOAD"
	| "PLUGIN_OPTIONS"
	| "PLUGIN_FAILED"
	| "WRONG_PASSWORD"
	| "NO_REPOSITORY"
	| "REPOSITORY_EXISTS"
	| "NOT_FOUND"
	| "CORRUPT"
	| "LOCKED"
	| "LOCK_SHORTEN"
	| "DESTINATION"
	/** Transient faults (5xx, throttling, dropped or stalled connections) outlasted the retry budget. */
	| "UNREACHABLE"
	| "DESTINATION_UNSAFE"
	/** A restore target path that cannot be written as asked (a write error, a symlink in the way). */
	| "TARGET"
	| "USAGE"
	| "ABORTED";

export class HoldfastError extends Error {
	readonly code: ErrorCode;

	constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
		super(message, options);
		this.name = "HoldfastError";
		this.code = code;
	}
}

export function isHoldfastError(value: unknown, code?: ErrorCode): value is HoldfastError {
	return value instanceof HoldfastError && (code === undefined || value.code === code);
}

/** One line for a user: never a stack, never a multi-line dump. */
export function describeError(error: unknown): string {
	if (error instanceof Error) return error.message.split("\n")[0] ?? error.name;
	return String(error);
}

/**
 * Damage to a repository's data, not a failure to reach it or to write a target: no version of
 * an object verifies (CORRUPT), or it is gone (NOT_FOUND). A restore loses what needed it and
 * goes on with the rest.
 */
export function isDataLoss(error: unknown): boolean {
	const code = (error as { code?: unknown } | undefined)?.code;
	return code === "CORRUPT" || code === "NOT_FOUND";
}
