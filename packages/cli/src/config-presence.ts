import { existsSync } from "node:fs";
import type { GlobalOptions } from "./session.js";

/**
 * Whether the user has no config at all (none named, none in the current folder), checked
 * without loading the engine. A config that was named but is missing is an error elsewhere.
 */
export function noConfigAnywhere(options: GlobalOptions): boolean {
	// The same default name as the core's DEFAULT_CONFIG_FILE.
	return options.config === undefined && process.env.HOLDFAST_CONFIG === undefined && !existsSync("holdfast.yaml");
}
