import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "vitest";
import { type CliResult, holdfastAsync } from "./cli.js";
import { pseudoRandom } from "./trees.js";
import { prng } from "./world.js";

/** Words that would tell a user their backups are damaged or their password wrong: a fault must never say them. */
export const ALARMING =
	/corrupt|damaged|does not match|no version of it verifies|wrong password|missing from|not listed|no readable/i;

/** The lines of stderr that are not warnings or notes: the run's error, if it failed. */
export function errorLines(stderr: string): string[] {
	return stderr.split("\n").filter((line) => line.startsWith("holdfast: ") && !line.startsWith("holdfast: warning: "));
}

/**
 * The rule for a command run while the store misbehaves: success (the caller then
 * checks the data), or exit 1 with one error line that says "unreachable". Never an alarm.
 */
export function expectSuccessOrUnreachable(result: CliResult, what: string): boolean {
	expect(result.stderr, `${what}: ${result.stderr}`).not.toMatch(ALARMING);
	if (result.code === 0) return true;
	expect(result.code, `${what}: ${result.stderr}`).toBe(1);
	const lines = errorLines(result.stderr);
	expect(lines, `${what}: ${result.stderr}`).toHaveLength(1);
	expect(lines[0], what).toMatch(/ is unreachable: /);
	return false;
}

/** A CLI run in `dir` with the test server's key in the environment (as the set's keyIdEnv/secretEnv name it). */
export function cliIn(dir: string, env: NodeJS.ProcessEnv) {
	return (args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliResult> => holdfastAsync(dir, args, { ...env, ...extra });
}

/** Forgets the local catalog, so the next command reads snapshots and index objects from the store. */
export function forgetCatalog(dir: string): Promise<void> {
	return rm(join(dir, ".holdfast"), { recursive: true, force: true });
}

/**
 * A seeded folder under `root`: a few files of several packs each (with packSizeMiB 1) and
 * small ones in subfolders. `generation` changes one big file and adds a small one.
 */
export async function writeSourceTree(root: string, seed: number, generation = 0): Promise<void> {
	const random = prng(seed);
	for (let i = 0; i < 3; i++) {
		await mkdir(join(root, `d${i}`), { recursive: true });
		const size = 600_000 + Math.floor(random() * 900_000);
		await writeFile(join(root, `d${i}/big-${i}.bin`), pseudoRandom(size, seed * 100 + i + (i === 0 ? generation * 7 : 0)));
		for (let j = 0; j < 4; j++)
			await writeFile(join(root, `d${i}/small-${j}.txt`), `seed ${seed} file ${i}.${j}\n`.repeat(j * 40 + 1));
	}
	for (let g = 1; g <= generation; g++) await writeFile(join(root, `added-${g}.txt`), `generation ${g}\n`.repeat(g * 100));
}
