import { randomBytes } from "node:crypto";
import { appendFile, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { ScanOptions, SourceEntry } from "@holdfast/core";
import { FsSource } from "@holdfast/plugin-fs-source";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createHarness, type Harness } from "./support/harness.js";

let harness: Harness | undefined;
afterEach(async () => {
	vi.restoreAllMocks();
	await harness?.close();
	harness = undefined;
});

/** Past the size from which a run remembers a file for the next to read ahead (8 MiB). */
const LARGE = 9 * 1024 * 1024;

/** Reads of each file, by path below the root: those the walk's entries made, and those of entries looked up ahead. */
interface Reads {
	walk: Map<string, number>;
	ahead: Map<string, number>;
}

/**
 * Counts every read of the folder source's entries, the walk's and those `lookup` gives,
 * without a scan tap. The walk waits before the entry at `holdAt` until a read ahead has
 * begun: a run that never reads ahead does not finish.
 */
function countReads(
	options: {
		holdAt?: string;
		/** Hold the walk until a read ahead has read its whole file, not only begun, then call `onHold`. */
		untilEnded?: boolean;
		onHold?: () => Promise<void>;
		onLookup?: (entry: SourceEntry) => Promise<void>;
	} = {},
): Reads {
	vi.restoreAllMocks();
	const reads: Reads = { walk: new Map(), ahead: new Map() };
	let aheadBegun!: () => void;
	const begun = new Promise<void>((resolve) => (aheadBegun = resolve));
	let aheadEnded!: () => void;
	const ended = new Promise<void>((resolve) => (aheadEnded = resolve));
	const counted = (entry: SourceEntry, into: Map<string, number>, ahead: boolean): SourceEntry => {
		const read = entry.read;
		if (!read) return entry;
		const path = entry.relPath.toString();
		return {
			...entry,
			read: () => {
				into.set(path, (into.get(path) ?? 0) + 1);
				if (!ahead) return read();
				aheadBegun();
				return (async function* () {
					yield* read();
					aheadEnded();
				})();
			},
		};
	};
	const scan = FsSource.prototype.scan;
	vi.spyOn(FsSource.prototype, "scan").mockImplementation(function (this: FsSource, scanOptions: ScanOptions) {
		const entries = scan.call(this, scanOptions);
		return (async function* () {
			for await (const entry of entries) {
				if (entry.relPath.toString() === options.holdAt) {
					await Promise.race([options.untilEnded ? ended : begun, nothingAhead()]);
					await options.onHold?.();
				}
				yield counted(entry, reads.walk, false);
			}
		})();
	});
	const lookup = FsSource.prototype.lookup;
	vi.spyOn(FsSource.prototype, "lookup").mockImplementation(async function (this: FsSource, root: string, relPath: Buffer) {
		const entry = await lookup.call(this, root, relPath);
		if (entry) await options.onLookup?.(entry);
		return entry && counted(entry, reads.ahead, true);
	});
	return reads;
}

/** Fails a walk held for a read ahead that never comes, rather than leave it to the test's time limit. */
function nothingAhead(): Promise<never> {
	return new Promise((_, reject) => {
		const timer = setTimeout(() => reject(new Error("no file was read ahead of the walk")), 60_000);
		timer.unref();
	});
}

/** A set of a small file and `large/<name>`, backed up once; then the large file changed, and the harness reopened. */
async function backedUpAndChanged(name: string): Promise<{ h: Harness; src: string }> {
	const h = await createHarness();
	harness = h;
	const src = join(h.dir, "src");
	await mkdir(join(src, "large"));
	await writeFile(join(src, "a.txt"), "small\n");
	await writeFile(join(src, "large", name), randomBytes(LARGE));
	await h.engine.init();
	await h.engine.backup();
	await appendFile(join(src, "large", name), "changed once");
	return { h, src };
}

async function restored(snapshot: string, file: string): Promise<Buffer> {
	const engine = (harness as Harness).engine;
	const target = join((harness as Harness).dir, `restore-${snapshot.slice(0, 8)}`);
	await engine.restore(snapshot, { target });
	return readFile(join(target, "src", file));
}

describe("large files read ahead of the walk", () => {
	it("reads the last run's large files that changed before the walk reaches them, once, and only those", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		// The large files sort last, behind folders of small files the walk lists first.
		for (let d = 0; d < 20; d++) {
			await mkdir(join(src, `d${d}`));
			for (let f = 0; f < 20; f++) await writeFile(join(src, `d${d}`, `f${f}.txt`), `file ${d}/${f}\n`);
		}
		await mkdir(join(src, "large"));
		await writeFile(join(src, "large/changed.img"), randomBytes(LARGE));
		await writeFile(join(src, "large/same.img"), randomBytes(LARGE));
		await harness.engine.init();
		await harness.engine.backup();

		const added = randomBytes(1024 * 1024);
		await appendFile(join(src, "large/changed.img"), added);
		await harness.reopen();
		harness.clock.advance(3_600_000);
		const reads = countReads({ holdAt: "large" });
		const second = await harness.engine.backup();

		expect(second.summary.files.changed).toBe(1);
		expect(second.summary.files.unchanged).toBe(401);
		// Read once, ahead (the walk waits at `large/` until the read has begun); the walk's entry is not read.
		expect(Object.fromEntries(reads.ahead)).toEqual({ "large/changed.img": 1 });
		expect(reads.walk.get("large/changed.img")).toBeUndefined();
		const content = await restored(second.snapshot?.id as string, "large/changed.img");
		expect(content.length).toBe(LARGE + added.length);
		expect(content.subarray(LARGE).equals(added)).toBe(true);

		// The catalog remembers it as read: the next run finds it unchanged, and reads nothing.
		await harness.reopen();
		harness.clock.advance(3_600_000);
		const again = countReads();
		const third = await harness.engine.backup();
		expect(third.summary.files.unchanged).toBe(402);
		expect(again.ahead.size + again.walk.size).toBe(0);
	});

	it("takes a file that changed in place after it was read ahead as it was read, and the next run reads it again", async () => {
		const { h, src } = await backedUpAndChanged("db.sqlite");
		const asRead = await readFile(join(src, "large/db.sqlite"));
		await h.reopen();
		h.clock.advance(3_600_000);
		// Written to again (same inode) once read ahead, before the walk lists it: a database, a log.
		const reads = countReads({
			holdAt: "",
			untilEnded: true,
			onHold: () => appendFile(join(src, "large/db.sqlite"), "and again"),
		});
		const second = await h.engine.backup();
		expect(second.warnings).toEqual([]);
		expect(reads.ahead.get("large/db.sqlite")).toBe(1);
		expect(reads.walk.get("large/db.sqlite")).toBeUndefined();
		expect((await restored(second.snapshot?.id as string, "large/db.sqlite")).equals(asRead)).toBe(true);
		// Read once: a.txt is unchanged, and the file is not read again as the walk lists it.
		expect(second.summary.bytes.read).toBe(asRead.length);

		// Remembered with the size and times it had when read: the next run reads it again, as it is now.
		vi.restoreAllMocks();
		await h.reopen();
		h.clock.advance(3_600_000);
		const third = await h.engine.backup();
		expect(third.summary.files.changed).toBe(1);
		expect(third.summary.files.unchanged).toBe(1);
		expect(
			(await restored(third.snapshot?.id as string, "large/db.sqlite")).equals(await readFile(join(src, "large/db.sqlite"))),
		).toBe(true);
	});

	it("reads again, as the walk lists it, a file replaced by another after it was looked up", async () => {
		const { h, src } = await backedUpAndChanged("disk.img");
		const last = randomBytes(LARGE + 77);
		await h.reopen();
		h.clock.advance(3_600_000);
		// Saved over by rename just after the lookup saw it, before the walk lists it: another inode.
		const reads = countReads({
			holdAt: "",
			onLookup: async (entry) => {
				if (entry.relPath.toString() !== "large/disk.img") return;
				await writeFile(join(src, "large/disk.img.new"), last);
				await rename(join(src, "large/disk.img.new"), join(src, "large/disk.img"));
			},
		});
		const second = await h.engine.backup();

		expect(second.warnings).toEqual([]);
		expect(reads.walk.get("large/disk.img")).toBe(1);
		expect((await restored(second.snapshot?.id as string, "large/disk.img")).equals(last)).toBe(true);

		// Remembered as the walk listed it: the next run reads nothing.
		vi.restoreAllMocks();
		await h.reopen();
		h.clock.advance(3_600_000);
		const third = await h.engine.backup();
		expect(third.summary.files.unchanged).toBe(2);
	});

	it("reads nothing ahead while a scan tap is set: the tap may wrap read()", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await writeFile(join(src, "disk.img"), randomBytes(LARGE));
		await harness.engine.init();
		await harness.engine.backup();
		await appendFile(join(src, "disk.img"), "more");
		await harness.reopen();
		harness.clock.advance(3_600_000);
		const reads = countReads();
		let tapped = 0;
		harness.host.hooks.scan.tap("count", (entries) => {
			tapped++;
			return entries;
		});
		const second = await harness.engine.backup();
		expect(tapped).toBe(1);
		expect(second.summary.files.changed).toBe(1);
		expect(reads.ahead.size).toBe(0);
		expect(reads.walk.get("disk.img")).toBe(1);
	});
});
