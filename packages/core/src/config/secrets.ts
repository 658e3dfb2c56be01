import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { HoldfastError } from "../host/errors.js";
import type { SecretRef } from "./config-types.js";

/** Secrets come from the environment or a file the config names; never from the config itself. */
export async function readSecret(ref: SecretRef, configDir: string, env: NodeJS.ProcessEnv, what: string): Promise<string> {
	if ("env" in ref) {
		const value = env[ref.env];
		if (value === undefined || value === "") {
			throw new HoldfastError("USAGE", `${what}: environment variable ${ref.env} is not set`);
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
