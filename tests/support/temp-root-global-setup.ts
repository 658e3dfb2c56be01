import { accessSync, constants, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Every folder a test makes, and every folder a command it spawns makes, lives under one
 * folder per run, removed when the run ends. Tests that stop a command with `kill -9` or fail
 * halfway leave their folders behind; a run leaves a few hundred MiB, and a machine whose
 * disk is nearly full stops its S3 test server's monitor (it refuses to run below 5 % free).
 * The workers and the commands they spawn inherit TMPDIR, so `os.tmpdir()` answers this folder.
 * Simulations kept in memory (/dev/shm) get a folder of the run's there too.
 */
export default function setup(): () => void {
	// Both projects name this setup; the first one's folder serves the whole run.
	if (process.env.HOLDFAST_TEST_TEMP_ROOT) return () => {};
	const root = mkdtempSync(join(tmpdir(), "holdfast-tests-"));
	const before = process.env.TMPDIR;
	process.env.TMPDIR = root;
	process.env.HOLDFAST_TEST_TEMP_ROOT = root;
	const memoryRoot = inMemory();
	if (memoryRoot) process.env.HOLDFAST_TEST_MEMORY_ROOT = memoryRoot;
	return () => {
		delete process.env.HOLDFAST_TEST_TEMP_ROOT;
		delete process.env.HOLDFAST_TEST_MEMORY_ROOT;
		if (memoryRoot) rmSync(memoryRoot, { recursive: true, force: true });
		if (before === undefined) delete process.env.TMPDIR;
		else process.env.TMPDIR = before;
		rmSync(root, { recursive: true, force: true });
	};
}

function inMemory(): string | undefined {
	try {
		accessSync("/dev/shm", constants.W_OK);
		return mkdtempSync("/dev/shm/holdfast-tests-");
	} catch {
		return undefined;
	}
}
