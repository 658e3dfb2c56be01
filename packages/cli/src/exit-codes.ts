/** Exit codes are a contract with scripts and schedulers. */
export const EXIT = Object.freeze({ ok: 0, failed: 1, usage: 2, partial: 3 });

/** Codes that mean "fix what you typed or wrote", not "the run failed". */
const USAGE_CODES = new Set(["CONFIG_INVALID", "USAGE", "PLUGIN_OPTIONS"]);

export function exitCodeFor(error: unknown): number {
	const code = (error as { code?: unknown } | undefined)?.code;
	return typeof code === "string" && USAGE_CODES.has(code) ? EXIT.usage : EXIT.failed;
}
