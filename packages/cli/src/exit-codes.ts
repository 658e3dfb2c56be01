import { isHoldfastError } from "@holdfast/core";

/** Exit codes are a contract with scripts and schedulers. */
export const EXIT = Object.freeze({ ok: 0, failed: 1, usage: 2, partial: 3 });

export function exitCodeFor(error: unknown): number {
	if (isHoldfastError(error, "CONFIG_INVALID") || isHoldfastError(error, "USAGE") || isHoldfastError(error, "PLUGIN_OPTIONS")) {
		return EXIT.usage;
	}
	return EXIT.failed;
}
