import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { HoldfastError } from "../host/errors.js";
import type { SecretRef } from "./config-types.js";

/** Secrets come from the environment or a file the config names; never from the config itself. */
export async function readSecret(ref: SecretRef, configDir: string, env: NodeJS.ProcessEnv, what: string): Promise<string> {
	if ("env" in ref) {
		const value = env[ref.env];
		if (value === undefined || value === "") {
			throw new HoldfastError(
				"USAGE",
				looksLikeSecret(ref.env) ? `${what}: ${SECRET_AS_NAME}` : `${what}: environment variable ${ref.env} is not set`,
			);
		}
		return value;
	}
	const path = resolve(configDir, ref.file);
	try {
		return (await readFile(path, "utf8")).replace(/\r?\n$/, "");
	} catch (cause) {
		throw new HoldfastError("USAGE", `${what}: cannot read ${path}: ${(cause as Error).message}`, { cause });
	}
}

/**
 * True for a "variable name" that looks like a key pasted where its variable's name belongs
 * (`secretEnv: K005xY…`, `AKIAIOSFODNN7EXAMPLE`): 16 characters or more, no underscore, a digit. Such a
 * name is never printed, so the message about it does not put the key in a terminal or a log.
 */
export function looksLikeSecret(name: string): boolean {
	return name.length >= 16 && !name.includes("_") && /[0-9]/.test(name);
}

/** What to say instead of a name that `looksLikeSecret`. */
export const SECRET_AS_NAME =
	"the environment variable it names is not set, and the name looks like a key itself (not shown): put the key in the environment and the variable's name in the config";
