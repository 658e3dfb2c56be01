import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export const HOLDFAST_BIN = fileURLToPath(new URL("../../packages/cli/bin/holdfast.js", import.meta.url));

/**
 * Every spawned command: the test password, key files made at `init` with a cheap scrypt
 * (N = 1024, not 2^15), which every later command of the repository pays again, and `--now`
 * taken as meant by commands that write (the tests simulate months). A test may override each.
 */
const TEST_ENV = { HOLDFAST_PASSWORD: "correct horse", HOLDFAST_SCRYPT_N: "1024", HOLDFAST_SIMULATED_CLOCK: "1" };

export interface CliResult {
	code: number;
	stdout: string;
	stderr: string;
}

/** Runs the built `holdfast` binary as a user would, in `cwd`. */
export function holdfast(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
	const result = spawnSync(process.execPath, [HOLDFAST_BIN, ...args], {
		cwd,
		encoding: "utf8",
		env: { ...process.env, ...TEST_ENV, ...env },
	});
	return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Starts `holdfast` without waiting, for tests that kill it. */
export function startHoldfast(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
	return spawn(process.execPath, [HOLDFAST_BIN, ...args], {
		cwd,
		env: { ...process.env, ...TEST_ENV, ...env },
		stdio: ["ignore", "pipe", "pipe"],
	});
}

/** Like `holdfast`, without blocking this process: needed when the test itself serves the requests (a proxy). */
export function holdfastAsync(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
	return new Promise((resolve) => {
		const child = startHoldfast(cwd, args, env);
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
		child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
		child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
	});
}
