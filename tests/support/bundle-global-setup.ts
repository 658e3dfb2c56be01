import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../../scripts/bundle.mjs", import.meta.url));

/**
 * The CLI tests run the bundled binary: after a bare `tsc -b` the bundle would be older than
 * what tsc just built, so it is brought up to date (in a second or two) before any test. In
 * a process of its own, so the bundler imports the built packages as Node resolves them.
 */
export default function setup(): void {
	const result = spawnSync(process.execPath, [SCRIPT, "--if-stale"], { encoding: "utf8" });
	if (result.status !== 0) throw new Error(`bundling failed: ${result.stderr || result.error?.message}`);
}
