import type { Session } from "./session.js";

/**
 * A run's error as a user needs it: which set, and what really went wrong. The code is kept
 * (it decides the exit code) and so is the original, for --verbose.
 */
export function nameRunError(error: unknown, set: string, session: Session): unknown {
	if (!(error instanceof Error)) return error;
	const code = (error as { code?: unknown }).code;
	// A usage or config mistake is about what was typed, not about the set's run.
	if (code === "USAGE" || code === "CONFIG_INVALID") return error;
	const first = error.message.split("\n")[0] ?? "";
	const prefix = set && !first.startsWith(`${set}: `) && session.engine.setNames().includes(set) ? `${set}: ` : "";
	if (!prefix) return error;
	const named = Object.assign(new Error(`${prefix}${error.message}`, { cause: error }), { code });
	named.stack = `${named.message}\n${error.stack?.split("\n").slice(1).join("\n") ?? ""}`;
	return named;
}
