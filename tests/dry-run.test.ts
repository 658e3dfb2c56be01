import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { DAY_MS, definePlugin } from "@holdfast/core";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

/** Every file under the repository folder with a hash of its bytes: the store as a reader would find it. */
async function storeState(dir: string): Promise<Record<string, string>> {
	const state: Record<string, string> = {};
	for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
		if (!entry.isFile()) continue;
		const path = join(entry.parentPath, entry.name);
		state[relative(dir, path)] = createHash("sha256")
			.update(await readFile(path))
			.digest("hex");
	}
	return state;
}

describe("dry runs", () => {
	it("go through every step of a groom and a repair yet leave the store, the catalog and the upload hook untouched", async () => {
		const uploads: string[] = [];
		const watcher = definePlugin({
			name: "upload-watcher",
			version: "1.0.0",
			engine: "^0.1.0",
			activate(context) {
				context.hooks.didUploadObject.tap(context.name, (object) => {
					uploads.push(object.key);
				});
			},
		});
		harness = await createHarness({
			start: "2030-01-06T02:00:00Z",
			extraBuiltins: new Map([["upload-watcher", watcher]]),
			plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-groom", "upload-watcher"],
			sets: (dir) => ({
				main: setConfig(dir, {
					retention: { days: 1, mode: "compliance" },
					groom: { match: "retention", keepLast: 1, graceHours: 0 },
				}),
			}),
		});
		const { dir, engine, clock } = harness;
		await engine.init();
		await writeFile(join(dir, "src", "a.txt"), "first version of the file");
		await engine.backup();
		clock.set(clock.now().getTime() + 2 * DAY_MS);
		await writeFile(join(dir, "src", "a.txt"), "second version of the file, longer");
		await engine.backup();
		clock.set(clock.now().getTime() + 5 * DAY_MS);
		// An index object lost: a repair would have packs to list again.
		const repo = join(dir, "repo");
		const indexDir = join(repo, "objects", "index");
		const listing = await Promise.all(
			(await readdir(indexDir)).map(async (name) => {
				const files = await readdir(join(indexDir, name));
				const data = files.find((f) => f.endsWith(".data")) as string;
				return { name, bytes: (await readFile(join(indexDir, name, data))).length };
			}),
		);
		// The largest index object is the one that lists the packs.
		const lost = listing.sort((x, y) => y.bytes - x.bytes)[0]?.name as string;
		await rm(join(indexDir, lost), { recursive: true });

		const before = await storeState(repo);
		const cachedBefore = await countEntries(harness);
		uploads.length = 0;
		const plan = await engine.backup(undefined, { dryRun: true });
		const groom = await engine.groom(undefined, { dryRun: true });
		const repair = await engine.repairIndex(undefined, { dryRun: true });

		// The runs had something to write: the backup its index object and snapshot (counted, never
		// stored), the groom an index object of marks, the repair a rebuilt index.
		expect(plan.summary.objects.uploaded).toBeGreaterThan(0);
		expect(plan.snapshot).toBeUndefined();
		expect(groom.forgotten.length + groom.marked.objects).toBeGreaterThan(0);
		expect(repair).toMatchObject({ dryRun: true, wouldWrite: true, written: undefined });
		expect(await storeState(repo)).toEqual(before);
		expect(await countEntries(harness)).toBe(cachedBefore);
		expect(uploads).toEqual([]);

		// The real groom then does what the dry one said.
		const real = await engine.groom();
		expect(real.forgotten).toEqual(groom.forgotten);
		expect([...real.marked.keys].sort()).toEqual([...groom.marked.keys].sort());
		expect(uploads.length).toBeGreaterThan(0);
		expect(await storeState(repo)).not.toEqual(before);
	});
});

describe("a dry-run backup", () => {
	it("reads and chunks like the backup it stands for, counts exactly what that backup uploads, and stores nothing", async () => {
		harness = await createHarness();
		const { dir, engine } = harness;
		await engine.init();
		const big = randomBytes(3 << 20);
		await writeFile(join(dir, "src", "kept.txt"), "the same in both runs");
		await writeFile(join(dir, "src", "big.bin"), big);
		await engine.backup();
		// One MiB in the middle of the big file rewritten, and a new file.
		big.set(randomBytes(1 << 20), 1 << 20);
		await writeFile(join(dir, "src", "big.bin"), big);
		await writeFile(join(dir, "src", "new.bin"), randomBytes(2 << 20));

		const repo = join(dir, "repo");
		const before = await storeState(repo);
		const cachedBefore = await countEntries(harness);
		const dry = await engine.backup(undefined, { dryRun: true });
		expect(await storeState(repo)).toEqual(before);
		expect(await countEntries(harness)).toBe(cachedBefore);
		expect(dry.snapshot).toBeUndefined();

		const real = await engine.backup();
		expect(real.snapshot).toBeDefined();
		expect(dry.summary.files).toEqual(real.summary.files);
		expect(dry.summary.blobs).toEqual(real.summary.blobs);
		expect(dry.summary.bytes.read).toBe(real.summary.bytes.read);
		expect(dry.summary.bytes.added).toBe(real.summary.bytes.added);
		expect(dry.summary.objects.uploaded).toBe(real.summary.objects.uploaded);
		expect(dry.summary.files).toMatchObject({ new: 1, changed: 1, unchanged: 1 });
		expect(dry.summary.bytes.added).toBeGreaterThanOrEqual(2 << 20);
		// Bytes uploaded differ only by the version IDs the run's index object records: the store
		// gives one to each object it stores, and a dry run's store stores none.
		const unrecorded = real.summary.bytes.uploaded - dry.summary.bytes.uploaded;
		expect(unrecorded).toBeGreaterThanOrEqual(0);
		expect(unrecorded).toBeLessThanOrEqual(64 * real.summary.objects.uploaded);
	});
});

/** Entries in the harness's catalog. */
async function countEntries(h: Harness): Promise<number> {
	let count = 0;
	const iterate = h.catalog.iterator?.(undefined);
	if (!iterate) throw new Error("the test catalog cannot be listed");
	for await (const _ of iterate) count++;
	return count;
}
