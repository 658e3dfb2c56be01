import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SetConfig } from "@holdfast/core";
import { expect } from "vitest";
import { type CliResult, holdfastAsync } from "./cli.js";
import { createHarness, tempDir } from "./harness.js";
import { projectEngine } from "./project-session.js";
import { type Described, describeTree, pseudoRandom } from "./trees.js";

/**
 * A fleet of machines, each a folder with its own config, catalog and data, backing up into one
 * repository: what the folder and the bucket fleet tests share. Their backups and grooms are
 * spawned (separate processes are what makes them a fleet); the listing and checking that
 * verify them run in this process.
 */

export const FAST = { HOLDFAST_SCRYPT_N: "1024" };
const KIB = 1024;

export interface Machine {
	readonly host: string;
	readonly dir: string;
}

export function config(host: string, destination: string, groom = "") {
	return `plugins:
  - "@holdfast/plugin-fs-source"
  - "@holdfast/plugin-fs-destination"
  - "@holdfast/plugin-b2"
  - "@holdfast/plugin-retention-planner"
  - "@holdfast/plugin-groom"
catalog: sqlite://./.holdfast/catalog.sqlite
password: { env: HOLDFAST_PASSWORD }
host: ${host}
sets:
  fleet:
    sources: [{ type: fs, path: ./data }]
    destination: ${destination}
    retention: { days: 1, mode: compliance }
${groom}`;
}

/**
 * Overlapping trees: files every host has (deduplicated across the fleet), files every other
 * host has, and files of its own; one shared file is large enough to be cut into chunks.
 */
export async function writeData(dir: string, index: number, round: number, extraKiB = 0): Promise<void> {
	const files: Record<string, Buffer> = {
		"shared/big.bin": pseudoRandom(900 * KIB, 1),
		"shared/a.bin": pseudoRandom(120 * KIB, 2),
		"shared/notes.txt": Buffer.from("the same notes on every machine\n".repeat(400)),
		[`half/${index % 2}.bin`]: pseudoRandom(150 * KIB, 10 + (index % 2)),
		[`own/h${index}.bin`]: pseudoRandom(100 * KIB, 100 + index),
		[`own/round-${round}.txt`]: Buffer.from(`host ${index}, round ${round}\n`),
	};
	if (extraKiB > 0) files[`own/extra-${round}.bin`] = pseudoRandom(extraKiB * KIB, 1000 + 100 * round + index);
	for (const [path, content] of Object.entries(files)) {
		await mkdir(join(dir, "data", path, ".."), { recursive: true });
		await writeFile(join(dir, "data", path), content);
	}
}

export async function fleet(root: string, count: number, prefix: string, destination: string, groom = ""): Promise<Machine[]> {
	const machines: Machine[] = [];
	for (let i = 1; i <= count; i++) {
		const host = `${prefix}${String(i).padStart(2, "0")}`;
		const dir = join(root, host);
		await mkdir(dir, { recursive: true });
		await writeFile(join(dir, "holdfast.yaml"), config(host, destination, groom));
		await writeData(dir, i, 1);
		machines.push({ host, dir });
	}
	return machines;
}

/** A command of one machine, spawned. */
export const cli = (dir: string, args: string[], env: NodeJS.ProcessEnv = {}) => holdfastAsync(dir, args, { ...FAST, ...env });

/** What each snapshot must restore to: its host's data as it was during the round that took it. */
export type Expected = Map<string, Record<string, Described>>;

export async function recordRound(
	machines: Machine[],
	listed: { id: string; host: string }[],
	expected: Expected,
): Promise<void> {
	const trees = new Map<string, Record<string, Described>>();
	for (const m of machines) trees.set(m.host, await describeTree(join(m.dir, "data")));
	for (const s of listed) if (!expected.has(s.id)) expected.set(s.id, trees.get(s.host) as Record<string, Described>);
}

export async function snapshots(dir: string, env: NodeJS.ProcessEnv = {}): Promise<{ id: string; host: string }[]> {
	const refs = await projectEngine(dir, { ...FAST, ...env })((engine) => engine.snapshots());
	return refs.map((ref) => ({ id: ref.id, host: ref.snapshot.host }));
}

/** Every snapshot restored from the repository alone (a fresh catalog, no machine's cache) and compared exactly. */
export async function restoreEverySnapshot(set: SetConfig, expected: Expected, env?: NodeJS.ProcessEnv): Promise<number> {
	const harness = await createHarness({
		start: new Date().toISOString(),
		plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-b2"],
		sets: () => ({ fleet: set }),
		...(env ? { env } : {}),
	});
	try {
		const refs = await harness.engine.snapshots("fleet");
		expect(refs.map((r) => r.id).sort()).toEqual([...expected.keys()].sort());
		for (const ref of refs) {
			const target = await tempDir("holdfast-fleet-restore-");
			await harness.engine.restore(ref.id, { setName: "fleet", target });
			expect(await describeTree(join(target, "data")), `snapshot of ${ref.snapshot.host}`).toEqual(expected.get(ref.id));
		}
		return refs.length;
	} finally {
		await harness.close();
	}
}

export async function checkClean(dir: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
	const report = await projectEngine(dir, { ...FAST, ...env })((engine) => engine.check(undefined, { readDataPercent: 100 }));
	expect(report.errors).toEqual([]);
	expect(report.immutability.gaps).toEqual([]);
	expect(report.packsRead).toBeGreaterThan(0);
}

export const expectOk = (results: CliResult[], machines: Machine[]) => {
	for (const [i, r] of results.entries()) expect(r.code, `${machines[i]?.host}: ${r.stderr}`).toBe(0);
};
