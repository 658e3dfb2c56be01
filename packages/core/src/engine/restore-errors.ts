import { getSystemErrorMap } from "node:util";
import { HoldfastError, isHoldfastError } from "../host/errors.js";

/** `restore: <path>: <reason>`, the reason as the system says it ("no space left on device"). */
export function targetError(display: string, error: unknown): HoldfastError {
	if (isHoldfastError(error) && error.message.startsWith("restore: ")) return error;
	const code = isHoldfastError(error) ? error.code : "TARGET";
	return new HoldfastError(code, `restore: ${display}: ${reasonOf(error)}`, { cause: error });
}

function reasonOf(error: unknown): string {
	const errno = (error as NodeJS.ErrnoException | undefined)?.errno;
	if (typeof errno === "number") {
		const known = getSystemErrorMap().get(errno);
		if (known) return known[1];
	}
	if (error instanceof Error) return error.message.split("\n")[0] ?? error.name;
	return String(error);
}

/** Runs one step on a target path; any failure comes out naming that path. */
export async function atPath<T>(display: string, step: () => Promise<T>): Promise<T> {
	try {
		return await step();
	} catch (error) {
		throw targetError(display, error);
	}
}

export function errnoOf(error: unknown): string | undefined {
	return (error as NodeJS.ErrnoException | undefined)?.code;
}
