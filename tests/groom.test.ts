import { readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DAY_MS, definePlugin, EmulatedLocks, type PluginDefinition } from "@holdfast/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createHarness, DEFAULT_PLUGINS, type Harness, setConfig } from "./support/harness.js";
import { MEMORY_STORE_PLUGIN, memoryDestination } from "./support/memory-store-plugin.js";
import { runWeek } from "./support/scenario.js";
import { describeTree, pseudoRandom } from "./support/trees.js";

const START = new Date("2030-01-06T02:00:00Z");
let harness: Harness | undefined;
afterEach(async () => {
	vi.restoreAllMocks();
	await harness?.close();
	harness = undefined;
});

/** Bytes of every version the store holds, whatever grooming has yet to delete. */
async function storedBytes(h: Harness): Promise<number> {
	let total = 0;
	for await (const version of h.engine.destinationFor("main", h.engine.resolveSet("main").set).listVersions("")) {
		if (!version.isDeleteMarker) total += version.size;
	}
	return total;
}

/**
 * A weekly set; `memory` keeps its repository in the harness's memory store, behind the same
 * lock emulation as a folder's: the year-long runs test grooming over time, and reading a lock
 * record file per version at every listing was most of their cost.
 */
function harnessFor(strategy: "extend" | "reinclude", extra: PluginDefinition[] = [], store: "fs" | "memory" = "fs") {
	return createHarness({
		inMemory: true,
		start: START.toISOString(),
		plugins: [...DEFAULT_PLUGINS, MEMORY_STORE_PLUGIN, ...extra.map((p) => p.name)],
		extraBuiltins: new Map(extra.map((p) => [p.name, p])),
		sets: (dir) => ({
			main: setConfig(dir, {
				destination:
					store === "memory"
						? memoryDestination(dir, strategy === "extend")
						: { type: "fs", path: `${dir}/repo`, lockExtension: strategy === "extend" },
				retention: { days: 90, mode: "compliance" },
				schedule: { every: "7d" },
				planner: { strategy: "auto", missedRuns: 0, slackDays: 14 },
				groom: { match: "retention", graceHours: 6 },
			}),
		}),
	});
}

describe.each(["reinclude", "extend"] as const)("grooming a year of weekly backups (%s)", (strategy) => {
	it("keeps every snapshot in its window restorable, never asks to delete a locked object, and reaches a steady state", async () => {
		const refused: string[] = [];
		const original = EmulatedLocks.prototype.deleteVersion;
		vi.spyOn(EmulatedLocks.prototype, "deleteVersion").mockImplementation(async function (
			this: EmulatedLocks,
			key,
			versionId,
			options,
		) {
			try {
				return await original.call(this, key, versionId, options);
			} catch (error) {
				refused.push(key);
				throw error;
			}
		});
		harness = await harnessFor(strategy, [], "memory");
		await harness.engine.init();
		const trees = new Map<string, Awaited<ReturnType<typeof describeTree>>>();
		const bytesAt = new Map<number, number>();
		let firstPacks: string[] = [];
		let deletedTotal = 0;
		for (let week = 0; week <= 52; week++) {
			const result = await runWeek(harness, week, START);
			trees.set(result.snapshot?.id as string, await describeTree(join(harness.dir, "src")));
			if (week === 0) firstPacks = [...(await harness.engine.open()).repository.index.packs.keys()];
			const groomed = await harness.engine.groom();
			deletedTotal += groomed.deleted.objects;
			bytesAt.set(week, await storedBytes(harness));

			const snapshots = await harness.engine.snapshots();
			const now = harness.clock.now().getTime();
			const inWindow = snapshots.filter((s) => new Date(s.snapshot.protectUntil).getTime() > now);
			expect(inWindow.length, `week ${week}`).toBe(Math.min(week + 1, 13));
			// Snapshots out of their window leave the set.
			expect(snapshots.length - inWindow.length, `week ${week}`).toBe(0);
			if (week % 4 === 0 || week === 52) {
				const report = await harness.engine.check(undefined, { readDataPercent: 100 });
				expect(report.errors, `week ${week}`).toEqual([]);
				for (const ref of inWindow) {
					const target = join(harness.dir, `r-${week}-${ref.id.slice(0, 8)}`);
					await harness.engine.restore(ref.id, { target });
					expect(await describeTree(join(target, "src")), `snapshot of ${ref.snapshot.time} at week ${week}`).toEqual(
						trees.get(ref.id),
					);
				}
			}
		}
		expect(refused).toEqual([]);
		expect(deletedTotal).toBeGreaterThan(0);
		// Storage stops growing: the second half-year adds (almost) nothing.
		expect(bytesAt.get(52) as number).toBeLessThanOrEqual((bytesAt.get(26) as number) * 1.2);
		const remainingPacks = new Set((await harness.engine.open()).repository.index.packs.keys());
		if (strategy === "reinclude") {
			// The first week's packs were copied forward by re-inclusion and freed when their locks ended.
			for (const key of firstPacks) expect(remainingPacks.has(key), key).toBe(false);
		}
	});
});

describe("groom decisions", () => {
	it("a dry run lists exactly what the real run then marks, and later deletes", async () => {
		harness = await harnessFor("reinclude");
		await harness.engine.init();
		for (let week = 0; week <= 20; week++) await runWeek(harness, week, START);
		const dry = await harness.engine.groom(undefined, { dryRun: true });
		const snapshotsBefore = (await harness.engine.snapshots()).length;
		// Nothing was marked before: the first groom marks, and deletes nothing.
		expect(dry.marked.objects).toBeGreaterThan(0);
		expect(dry.deleted.objects).toBe(0);
		expect((await harness.engine.snapshots()).length).toBe(snapshotsBefore);
		const real = await harness.engine.groom();
		expect([...real.marked.keys].sort()).toEqual([...dry.marked.keys].sort());
		expect(real.deleted.keys).toEqual([]);
		expect(real.forgotten).toEqual(dry.forgotten);
		const open = await harness.engine.open();
		for (const key of real.marked.keys) expect(await open.repository.destination.head(key), key).toBeDefined();

		// Within the grace of the mark, nothing goes; after it, the marked objects do (their locks have ended).
		harness.clock.set(harness.clock.now().getTime() + 5 * 3_600_000);
		expect((await harness.engine.groom(undefined, { dryRun: true })).deleted.objects).toBe(0);
		harness.clock.set(harness.clock.now().getTime() + 2 * 3_600_000);
		const dryLater = await harness.engine.groom(undefined, { dryRun: true });
		expect(dryLater.deleted.objects).toBeGreaterThan(0);
		const later = await harness.engine.groom();
		expect([...later.deleted.keys].sort()).toEqual([...dryLater.deleted.keys].sort());
		const unlocked = real.marked.keys.filter((k) => !later.held.some((h) => h.key === k && h.reason === "lock"));
		expect([...later.deleted.keys].sort()).toEqual(expect.arrayContaining(unlocked.sort()));
	});

	it("settles: once locks allow, nothing no snapshot needs is left, and an idle groom writes nothing", async () => {
		harness = await harnessFor("extend");
		const h = harness;
		await h.engine.init();
		for (let week = 0; week <= 3; week++) await runWeek(h, week, START);
		// Past every snapshot's window and every lock: grooms mark, delete, and mark and delete what that left.
		h.clock.set(START.getTime() + 200 * DAY_MS);
		for (let i = 0; i < 3; i++) {
			await h.engine.groom();
			h.clock.advance(2 * DAY_MS);
		}
		const report = await h.engine.check(undefined, { readDataPercent: 0 });
		expect(report.errors).toEqual([]);
		// Each groom's index object supersedes the last; none of them may be left over for good.
		expect(report.reclaimable.objects).toBe(0);
		const indexObjects = () => readdir(join(h.dir, "repo/objects/index"));
		const before = await indexObjects();
		const idle = await h.engine.groom();
		expect(idle.marked.objects + idle.deleted.objects).toBe(0);
		expect(await indexObjects()).toEqual(before);
	});

	it("an object marked while its lock outlasts the grace is reported held by that lock, until its end", async () => {
		harness = await harnessFor("extend");
		await harness.engine.init();
		const src = join(harness.dir, "src");
		await writeFile(join(src, "only-in-week-0.bin"), pseudoRandom(300_000, 41));
		harness.clock.set(START.getTime());
		await harness.engine.backup();
		// The packs of week 0 alone, taken before week 1 adds its own.
		const week0Packs = new Set((await harness.engine.open()).repository.index.packs.keys());
		await rm(join(src, "only-in-week-0.bin"));
		await writeFile(join(src, "later.txt"), "later");
		harness.clock.set(START.getTime() + 7 * DAY_MS);
		await harness.engine.backup();
		expect((await harness.engine.open()).repository.index.packs.size).toBeGreaterThan(week0Packs.size);
		harness.clock.set(START.getTime() + 95 * DAY_MS);
		const result = await harness.engine.groom();
		expect(result.marked.objects).toBeGreaterThan(0);
		const markedPacks = result.held.filter((h) => h.key.startsWith("data/") && h.detail?.startsWith("marked"));
		expect(markedPacks.length).toBeGreaterThan(0);
		for (const held of markedPacks) {
			expect(week0Packs.has(held.key)).toBe(true);
			// Locked about 14 days past the window: that, not the 6-hour grace, is when it can go.
			expect(held.reason).toBe("lock");
			expect(held.until?.getTime()).toBeGreaterThan(START.getTime() + 100 * DAY_MS);
		}
		const markedAndLocked = result.held.filter((h) => h.reason === "lock" && result.marked.keys.includes(h.key));
		expect(result.marked.locked).toBe(markedAndLocked.length);
		expect(markedAndLocked.map((h) => h.key)).toEqual(expect.arrayContaining(markedPacks.map((h) => h.key)));
		expect(result.marked.locked).toBeGreaterThan(0);
		expect(result.heldByLock.objects).toBeGreaterThanOrEqual(result.marked.locked);
	});

	it("objects under its prefixes that are not of its layout (a repository nested in the bucket) are never counted or groomed", async () => {
		harness = await harnessFor("extend");
		await harness.engine.init();
		await runWeek(harness, 0, START);
		const { repository } = await harness.engine.open();
		harness.clock.set(START.getTime() + 400 * DAY_MS);
		const before = (await harness.engine.check(undefined, { readDataPercent: 0 })).reclaimable;
		const hash = "ab".padEnd(64, "7");
		const foreign = [`data/config/${hash}`, `data/data/ab/${hash}`, `snapshots/x/${hash}`];
		for (const key of foreign) await repository.destination.put(key, Buffer.from("another repository's object"));
		const report = await harness.engine.check(undefined, { readDataPercent: 0 });
		expect(report.reclaimable).toEqual(before);
		for (let i = 0; i < 3; i++) {
			const groomed = await harness.engine.groom();
			for (const key of foreign) {
				expect(groomed.marked.keys).not.toContain(key);
				expect(groomed.deleted.keys).not.toContain(key);
			}
			harness.clock.advance(2 * DAY_MS);
		}
		for (const key of foreign) expect(await repository.destination.head(key)).toBeDefined();
	});

	it("is refused without a plugin that plans grooming, rather than reporting nothing done", async () => {
		harness = await createHarness({ plugins: DEFAULT_PLUGINS.filter((p) => p !== "@holdfast/plugin-groom") });
		await harness.engine.init();
		await expect(harness.engine.groom()).rejects.toMatchObject({
			code: "USAGE",
			message: "groom needs a plugin that plans grooming (@holdfast/plugin-groom) in plugins",
		});
	});

	it("a plugin can veto a deletion; the candidate is held and reported", async () => {
		let vetoed = "";
		const keeper = definePlugin({
			name: "keeper",
			version: "1.0.0",
			engine: "^0.1.0",
			activate(context) {
				context.hooks.keep.tap("keeper", (candidate) => {
					if (candidate.kind !== "pack" || vetoed) return candidate.key === vetoed ? "legal hold" : undefined;
					vetoed = candidate.key;
					return "legal hold";
				});
			},
		});
		harness = await harnessFor("reinclude", [keeper as PluginDefinition]);
		await harness.engine.init();
		for (let week = 0; week <= 20; week++) await runWeek(harness, week, START);
		const result = await harness.engine.groom();
		expect(vetoed).not.toBe("");
		expect(result.deleted.keys).not.toContain(vetoed);
		expect(result.held).toContainEqual(expect.objectContaining({ key: vetoed, reason: "veto", detail: "legal hold" }));
		const open = await harness.engine.open();
		expect(await open.repository.destination.head(vetoed)).toBeDefined();
	});

	it("holds objects whose lock has not expired and reports them", async () => {
		harness = await harnessFor("extend");
		await harness.engine.init();
		await runWeek(harness, 0, START);
		await runWeek(harness, 1, START);
		harness.clock.set(START.getTime() + 95 * DAY_MS);
		// Week 0 is past its window, but the extend strategy locked it 14 days longer.
		const result = await harness.engine.groom();
		expect(result.forgotten).toHaveLength(1);
		const week0 = `snapshots/${result.forgotten[0]}`;
		// Only superseded index objects may go; no pack and no snapshot while their locks hold.
		expect(result.deleted.keys.filter((k) => !k.startsWith("index/"))).toEqual([]);
		// Marked now, so that the groom after its lock ends deletes it.
		expect(result.held.some((h) => h.key === week0 && h.reason === "marked")).toBe(true);
		harness.clock.set(START.getTime() + 100 * DAY_MS);
		const locked = await harness.engine.groom();
		expect(locked.held.some((h) => h.key === week0 && h.reason === "lock")).toBe(true);
		expect(locked.deleted.keys.filter((k) => !k.startsWith("index/"))).toEqual([]);
		harness.clock.set(START.getTime() + 105 * DAY_MS);
		const later = await harness.engine.groom();
		expect(later.deleted.keys).toContain(week0);
		// Week 1 is past its window too, but it is the newest of its set: it stays, and what it needs.
		expect((await harness.engine.snapshots()).map((r) => r.snapshot.time)).toEqual([
			new Date(START.getTime() + 7 * DAY_MS).toISOString(),
		]);
	});
});

describe("grooming after each backup", () => {
	it("runs when the set says afterBackup", async () => {
		harness = await createHarness({
			inMemory: true,
			start: START.toISOString(),
			sets: (dir) => ({
				main: setConfig(dir, {
					retention: { days: 14, mode: "compliance" },
					schedule: { every: "7d" },
					planner: { strategy: "auto", missedRuns: 0, slackDays: 0 },
					groom: { match: "retention", afterBackup: true, graceHours: 0 },
				}),
			}),
		});
		await harness.engine.init();
		const results = [];
		for (let week = 0; week < 6; week++) results.push(await runWeek(harness, week, START));
		expect(results.every((r) => r.groom !== undefined)).toBe(true);
		const forgotten = results.flatMap((r) => r.groom?.forgotten ?? []);
		expect(forgotten.length).toBeGreaterThan(0);
		// Only snapshots inside their 14-day window remain listed.
		expect((await harness.engine.snapshots()).length).toBeLessThanOrEqual(3);
	});
});
