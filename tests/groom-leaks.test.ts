import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DAY_MS, EmulatedLocks, KEY_PREFIX } from "@holdfast/core";
import { IndexStore } from "@holdfast/core/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { holdfast, startHoldfast } from "./support/cli.js";
import { createHarness, type Harness, setConfig, tempDir } from "./support/harness.js";
import { projectEngine } from "./support/project-session.js";
import { describeTree, pseudoRandom } from "./support/trees.js";

const START = new Date("2030-01-06T02:00:00Z");
const HOUR_MS = 3_600_000;

/** Keys with at least one stored version (a deleted version leaves its folder empty). */
async function storedKeys(repo: string): Promise<string[]> {
	const keys: string[] = [];
	const walk = async (dir: string, prefix: string) => {
		for (const entry of await readdir(dir, { withFileTypes: true })) {
			if (entry.name.endsWith(".versions")) {
				const files = await readdir(join(dir, entry.name));
				if (files.some((f) => f.endsWith(".data"))) keys.push(`${prefix}${entry.name.slice(0, -".versions".length)}`);
			} else if (entry.isDirectory()) await walk(join(dir, entry.name), `${prefix}${entry.name}/`);
		}
	};
	await walk(join(repo, "objects"), "").catch(() => undefined);
	return keys.sort();
}

/** A project folder whose set keeps 1-day locks and grooms by retention with 1 h of grace; `extra` adds set lines. */
async function groomedProject(prefix: string, set: string, extra = ""): Promise<{ dir: string; repo: string }> {
	const dir = await tempDir(prefix);
	await mkdir(join(dir, "data"), { recursive: true });
	await writeFile(
		join(dir, "holdfast.yaml"),
		`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-groom"]
sets:
  ${set}:
    sources: [{ type: fs, path: ./data }]
    destination: { type: fs, path: ./repo }
    retention: { days: 1, mode: compliance }
${extra}    groom: { match: retention, graceHours: 1 }
`,
	);
	return { dir, repo: join(dir, "repo") };
}

describe("what a backup killed with SIGKILL leaves behind", () => {
	it("is reported as reclaimable, then marked and deleted by grooming once the grace and locks have passed", async () => {
		const { dir, repo } = await groomedProject("holdfast-leaks-", "leaky", "    packSizeMiB: 1\n");
		const at = (ms: number) => ["--now", new Date(START.getTime() + ms).toISOString()];
		// Only the killed backup and the text check are commands: the other runs open the same folder in this process.
		const runAt = (ms: number) => projectEngine(dir, {}, new Date(START.getTime() + ms));
		await runAt(0)((engine) => engine.init());
		await writeFile(join(dir, "data/kept.txt"), "in every snapshot\n".repeat(100));
		const first = (await runAt(0)((engine) => engine.backup())).snapshot;
		if (!first) throw new Error("the first backup saved no snapshot");
		const afterFirst = new Set(await storedKeys(repo));

		// The second backup is killed once it has written ten packs (and so an index object listing eight).
		await mkdir(join(dir, "data/big"));
		for (let i = 0; i < 48; i++) await writeFile(join(dir, `data/big/${i}.bin`), pseudoRandom(1_000_000, 500 + i));
		await new Promise<void>((resolve, reject) => {
			const child = startHoldfast(dir, ["backup", "--no-progress", ...at(HOUR_MS)]);
			let done = false;
			const poll = setInterval(async () => {
				const packs = (await storedKeys(repo)).filter((k) => k.startsWith(KEY_PREFIX.data) && !afterFirst.has(k));
				if (packs.length >= 10 && !done) {
					done = true;
					child.kill("SIGKILL");
				}
			}, 10);
			child.on("exit", (code, signal) => {
				clearInterval(poll);
				if (signal === "SIGKILL") resolve();
				else reject(new Error(`the backup ended on its own (${code}) before it could be killed`));
			});
		});
		// Its files are gone by the next backup: nothing will ever need what it wrote.
		await rm(join(dir, "data/big"), { recursive: true });
		const leaked = (await storedKeys(repo)).filter((k) => !afterFirst.has(k));
		const leakedPacks = leaked.filter((k) => k.startsWith(KEY_PREFIX.data));
		expect(leakedPacks.length).toBeGreaterThanOrEqual(10);
		expect(leaked.some((k) => k.startsWith(KEY_PREFIX.index))).toBe(true);
		expect(leaked.some((k) => k.startsWith(KEY_PREFIX.snapshots))).toBe(false);

		const parsed = await runAt(2 * HOUR_MS)((engine) => engine.check(undefined, { readDataPercent: 100 }));
		expect(parsed.errors).toEqual([]);
		expect(parsed.reclaimable.objects).toBeGreaterThanOrEqual(leaked.length);
		const text = holdfast(dir, ["check", ...at(2 * HOUR_MS)]);
		expect(text.stdout).toMatch(/^reclaimable: \d+ objects \([^)]+\) no snapshot needs/m);
		expect(text.stdout).toContain("no errors found");

		// Past the locks (1 day) and the grace (1 h): the first groom marks, the one a grace later deletes.
		const marking = await runAt(3 * DAY_MS)((engine) => engine.groom());
		expect(marking.marked.keys).toEqual(expect.arrayContaining(leaked));
		expect(marking.deleted.keys).toEqual([]);
		const early = await runAt(3 * DAY_MS + HOUR_MS / 2)((engine) => engine.groom(undefined, { dryRun: true }));
		expect(early.deleted.keys).toEqual([]);
		const dry = await runAt(3 * DAY_MS + 2 * HOUR_MS)((engine) => engine.groom(undefined, { dryRun: true }));
		expect(dry.deleted.keys).toEqual(expect.arrayContaining(leaked));
		const deleting = await runAt(3 * DAY_MS + 2 * HOUR_MS)((engine) => engine.groom());
		expect([...deleting.deleted.keys].sort()).toEqual([...dry.deleted.keys].sort());
		const remaining = new Set(await storedKeys(repo));
		for (const key of leaked) expect(remaining.has(key), key).toBe(false);

		const after = await runAt(3 * DAY_MS + 3 * HOUR_MS)((engine) => engine.check(undefined, { readDataPercent: 100 }));
		expect(after.errors).toEqual([]);
		const target = join(dir, "restored");
		const restored = await runAt(3 * DAY_MS + 3 * HOUR_MS)((engine) => engine.restore(first.id, { target }));
		expect(restored.summary.partial).toBeFalsy();
		expect(await describeTree(join(target, "data"))).toEqual(await describeTree(join(dir, "data")));
		await rm(dir, { recursive: true, force: true });
	}, 120_000);
});

describe("an index object whose write a crash cut off before its lock was recorded", () => {
	it("is read by no run, and grooming collects it like any other leak", async () => {
		const { dir, repo } = await groomedProject("holdfast-cut-index-", "cut");
		const runAt = (ms: number) => projectEngine(dir, {}, new Date(START.getTime() + ms));
		await runAt(0)((engine) => engine.init());
		await writeFile(join(dir, "data/kept.txt"), "in every snapshot\n".repeat(100));
		const first = (await runAt(0)((engine) => engine.backup())).snapshot;
		if (!first) throw new Error("the backup saved no snapshot");
		// As the folder store leaves a version killed between its bytes and its record: the bytes alone.
		const cut = `${KEY_PREFIX.index}${"c".repeat(64)}`;
		await mkdir(join(repo, "objects", `${cut}.versions`), { recursive: true });
		await writeFile(join(repo, "objects", `${cut}.versions`, "0000000000000-cut.data"), "bytes a crash left");
		expect(await storedKeys(repo)).toContain(cut);

		const checked = await runAt(2 * HOUR_MS)((engine) => engine.check(undefined, { readDataPercent: 0 }));
		expect(checked.errors).toEqual([]);
		const marking = await runAt(3 * DAY_MS)((engine) => engine.groom());
		expect(marking.marked.keys).toContain(cut);
		const deleting = await runAt(3 * DAY_MS + 2 * HOUR_MS)((engine) => engine.groom());
		expect(deleting.deleted.keys).toContain(cut);
		expect(await storedKeys(repo)).not.toContain(cut);
		// What the snapshot needs stayed.
		const target = join(dir, "restored");
		const restored = await runAt(3 * DAY_MS + 3 * HOUR_MS)((engine) => engine.restore(first.id, { target }));
		expect(restored.summary.partial).toBeFalsy();
		await rm(dir, { recursive: true, force: true });
	}, 60_000);
});

describe("a groom cut short between its index object and its deletions", () => {
	let harness: Harness | undefined;
	afterEach(async () => {
		vi.restoreAllMocks();
		await harness?.close();
		harness = undefined;
	});

	it("is completed by the next groom", async () => {
		harness = await createHarness({
			inMemory: true,
			start: START.toISOString(),
			sets: (dir) => ({
				main: setConfig(dir, { retention: { days: 1, mode: "compliance" }, groom: { match: "retention", graceHours: 0 } }),
			}),
		});
		const h = harness;
		const src = join(h.dir, "src");
		const repo = join(h.dir, "repo");
		await h.engine.init();
		await writeFile(join(src, "file.bin"), pseudoRandom(200_000, 1));
		await h.engine.backup();
		h.clock.advance(2 * DAY_MS);
		await writeFile(join(src, "file.bin"), pseudoRandom(200_000, 2));
		const second = await h.engine.backup();
		h.clock.advance(30 * DAY_MS);
		expect((await h.engine.groom()).marked.objects).toBeGreaterThan(0);

		const due = await h.engine.groom(undefined, { dryRun: true });
		expect(due.deleted.keys.some((k) => k.startsWith(KEY_PREFIX.data))).toBe(true);
		// The process dies after its index object (with the tombstones) and one deletion.
		let calls = 0;
		const original = EmulatedLocks.prototype.deleteVersion;
		vi.spyOn(EmulatedLocks.prototype, "deleteVersion").mockImplementation(async function (this: EmulatedLocks, ...args) {
			if (++calls > 1) throw new Error("killed");
			return original.apply(this, args);
		});
		await expect(h.engine.groom()).rejects.toThrow("killed");
		vi.restoreAllMocks();
		const left = (await storedKeys(repo)).filter((k) => due.deleted.keys.includes(k));
		expect(left.length).toBeGreaterThan(0);

		const completing = await h.engine.groom();
		expect(completing.deleted.keys).toEqual(expect.arrayContaining(left));
		const remaining = new Set(await storedKeys(repo));
		for (const key of due.deleted.keys) expect(remaining.has(key), key).toBe(false);
		const report = await h.engine.check(undefined, { readDataPercent: 100 });
		expect(report.errors).toEqual([]);
		const target = join(h.dir, "restored");
		await h.engine.restore(second.snapshot?.id as string, { target });
		expect(await describeTree(join(target, "src"))).toEqual(await describeTree(src));
	});
});

describe("packs no index object lists, while a snapshot misses a blob", () => {
	let harness: Harness | undefined;
	afterEach(async () => {
		vi.restoreAllMocks();
		await harness?.close();
		harness = undefined;
	});

	it("are held, not marked: one of them may hold the blob", async () => {
		harness = await createHarness({
			inMemory: true,
			start: START.toISOString(),
			sets: (dir) => ({
				main: setConfig(dir, {
					retention: { days: 1, mode: "compliance" },
					packSizeMiB: 1,
					groom: { match: "retention", graceHours: 0 },
				}),
			}),
		});
		const h = harness;
		await h.engine.init();
		for (let i = 0; i < 20; i++) await writeFile(join(h.dir, `src/${i}.bin`), pseudoRandom(700_000, 40 + i));
		await h.engine.backup();
		// The index object written after the first eight packs is lost, and their headers cannot be read.
		const index = (await h.engine.open()).repository.index;
		const [lostIndex, lostPacks] = [...index.listed].find(([, packs]) => packs.length >= 8) ?? [];
		expect(lostPacks?.length).toBeGreaterThanOrEqual(8);
		await rm(join(h.dir, "repo/objects", `${lostIndex}.versions`), { recursive: true });
		vi.spyOn(IndexStore.prototype, "recoverUnlistedPacks").mockResolvedValue({ scanned: 0, packs: [], unreadable: [], blobs: 0 });
		await h.reopen({ freshCatalog: true });
		h.clock.advance(3 * DAY_MS);

		const result = await h.engine.groom();
		for (const key of lostPacks ?? []) {
			expect(result.marked.keys, key).not.toContain(key);
			expect(result.held).toContainEqual(expect.objectContaining({ key, reason: "snapshot" }));
		}
	});
});
