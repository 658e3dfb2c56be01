import { readdirSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { startHoldfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";
import { projectEngine } from "./support/project-session.js";
import { type Described, describeTree, pseudoRandom } from "./support/trees.js";

/** What one run (a spawned command, or the same step in this process) may take on a loaded machine; the test's budget is counted in these. */
const CLI_BUDGET_MS = 60_000;

let dir: string;
beforeAll(async () => {
	dir = await tempDir("holdfast-crash-");
	for (let i = 0; i < 48; i++) {
		await mkdir(join(dir, `data/d${i % 6}`), { recursive: true });
		await writeFile(join(dir, `data/d${i % 6}/big-${i}.bin`), pseudoRandom(1_000_000 + i * 10_000, 100 + i));
		await writeFile(join(dir, `data/d${i % 6}/small-${i}.txt`), `small file ${i}\n`.repeat(i + 1));
	}
	await writeFile(
		join(dir, "holdfast.yaml"),
		`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-retention-planner"]
sets:
  crash:
    sources: [{ type: fs, path: ./data }]
    destination: { type: fs, path: ./repo }
    retention: { days: 30 }
    packSizeMiB: 1
`,
	);
	await projectEngine(dir)((engine) => engine.init());
}, CLI_BUDGET_MS);

type Kind = "data" | "index" | "snapshots";

/** Objects of one kind in the repository (each key is a `<key>.versions` directory, wherever it is fanned out). */
function stored(kind: Kind): number {
	try {
		const names = readdirSync(join(dir, "repo/objects", kind), { recursive: true }) as string[];
		return names.filter((name) => name.endsWith(".versions")).length;
	} catch {
		return 0;
	}
}

/**
 * Where each backup is killed, by what it has stored since it started rather than by the
 * clock, so a busy machine moves no kill point: the first pack, a few, just past the first
 * index object (written every 8 packs), the index object itself, deep into the run, and the
 * snapshot object. About 60 packs in all; what an index object recorded is not uploaded again.
 */
const KILL_POINTS: { kind: Kind; count: number }[] = [
	{ kind: "data", count: 1 },
	{ kind: "data", count: 4 },
	{ kind: "data", count: 9 },
	{ kind: "index", count: 1 },
	{ kind: "data", count: 20 },
	{ kind: "snapshots", count: 1 },
];

/** Starts a backup and kills it with SIGKILL once it stored `count` more objects of `kind`; true when it was killed. */
function killAt(point: { kind: Kind; count: number }): Promise<boolean> {
	const before = stored(point.kind);
	return new Promise((resolve) => {
		const child = startHoldfast(dir, ["backup", "--no-progress"]);
		const poll = setInterval(() => {
			if (stored(point.kind) >= before + point.count) child.kill("SIGKILL");
		}, 5);
		child.on("exit", (_code, signal) => {
			clearInterval(poll);
			resolve(signal === "SIGKILL");
		});
	});
}

async function expectRestores(selector: string, target: string, expected: Record<string, Described>): Promise<void> {
	const { summary } = await projectEngine(dir)((engine) => engine.restore(selector, { target }));
	expect(summary.partial, target).toBeFalsy();
	expect(await describeTree(join(target, "data"))).toEqual(expected);
}

describe("a backup killed with SIGKILL at points through its work", () => {
	it(
		"never leaves a listed snapshot that does not restore, and the next backup completes",
		async () => {
			const expected = await describeTree(join(dir, "data"));
			for (const point of KILL_POINTS) {
				const at = `${point.kind} +${point.count}`;
				expect(await killAt(point), `the backup reached ${at} and was killed there`).toBe(true);
				// What the killed backup left is opened by the next runs, here in this process: only the kill needs a process.
				const check = await projectEngine(dir)((engine) => engine.check(undefined, { readDataPercent: 100 }));
				expect(check.errors, `check after a kill at ${at}`).toEqual([]);
				const snapshots = await projectEngine(dir)((engine) => engine.snapshots());
				for (const snapshot of snapshots) {
					const target = join(dir, `restore-${point.kind}-${point.count}-${snapshot.id.slice(0, 8)}`);
					await expectRestores(snapshot.id, target, expected);
				}
			}
			const final = await projectEngine(dir)((engine) => engine.backup());
			expect(final.partial).toBe(false);
			await expectRestores("latest", join(dir, "restore-final"), expected);
		},
		// Per kill: the backup, check, the listing and at most one restore per snapshot so far; then a backup and a restore.
		CLI_BUDGET_MS * (KILL_POINTS.length * 3 + (KILL_POINTS.length * (KILL_POINTS.length + 1)) / 2 + 2),
	);
});
