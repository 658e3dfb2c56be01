import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The CLI's own install (its package folder), where the bundled plugins are found when the
 * config's folder has none. Found upwards from this module, so src/, dist/ and the bundle
 * under dist/bundle all agree.
 */
export const CLI_DIR = packageDirOf(dirname(fileURLToPath(import.meta.url)));

function packageDirOf(start: string): string {
	for (let dir = start; ; dir = dirname(dir)) {
		if (existsSync(join(dir, "package.json"))) return dir;
		if (dirname(dir) === dir) return start;
	}
}
