import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Catalog, DAY_MS, KEY_PREFIX, ManualClock, openCatalog } from "@holdfast/core";
import { MemoryDestination, MemoryLogger, Repository } from "@holdfast/core/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { runWeek } from "./support/scenario.js";

/**
 * The catalog caches each index object the repository has read; once grooming deletes one, the
 * next complete index load drops its values, so a host's catalog does not grow for good.
 */

const START = new Date("2030-01-06T02:00:00Z");
const PASSWORD = "correct horse";
const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };

let harness: Harness | undefined;
afterEach(async () => {
	vi.restoreAllMocks();
	await harness?.close();
	harness = undefined;
});

/** What the catalog holds for one index object: its head, its packed blobs (a file beside a SQLite catalog), a full copy. */
async function cachedValues(catalog: Catalog, catalogPath: string | undefined, repositoryId: string, key: string) {
	const blobsKey = `index-blobs:${repositoryId}:${key}`;
	const blobsFile = catalogPath
		? join(`${catalogPath}.values`, "holdfast", createHash("sha256").update(`holdfast:${blobsKey}`).digest("hex"))
		: undefined;
	return {
		head: (await catalog.get(`index-head:${repositoryId}:${key}`)) !== undefined,
		blobs: blobsFile ? existsSync(blobsFile) : (await catalog.get(blobsKey)) !== undefined,
		full: (await catalog.get(`index:${repositoryId}:${key}`)) !== undefined,
	};
}

const NONE = { head: false, blobs: false, full: false };

describe("index objects grooming deleted", () => {
	it("lose their catalog values at the next load, not at a dry run's; every remaining one stays cached", async () => {
		harness = await createHarness({
			inMemory: true,
			start: START.toISOString(),
			sets: (dir) => ({
				main: setConfig(dir, {
					destination: { type: "fs", path: `${dir}/repo`, lockExtension: true },
					retention: { days: 90, mode: "compliance" },
					schedule: { every: "7d" },
					planner: { strategy: "auto", missedRuns: 0, slackDays: 14 },
					groom: { match: "retention", graceHours: 6 },
				}),
			}),
		});
		const h = harness;
		const catalogPath = join(h.dir, "catalog.sqlite");
		await h.engine.init();
		for (let week = 0; week <= 3; week++) await runWeek(h, week, START);
		// Past every snapshot's window and every lock: grooms mark, then delete and consolidate.
		h.clock.set(START.getTime() + 200 * DAY_MS);
		const deleted: string[] = [];
		for (let i = 0; i < 3; i++) {
			const groomed = await h.engine.groom();
			deleted.push(...groomed.deleted.keys.filter((key) => key.startsWith(KEY_PREFIX.index)));
			h.clock.advance(2 * DAY_MS);
		}
		expect(deleted.length).toBeGreaterThan(0);
		const { repository } = await h.engine.open(undefined, { dryRun: true });
		const id = repository.id;
		// Read by the runs before, and a dry run writes (and so deletes) nothing in the catalog.
		const stillCached = await Promise.all(deleted.map((key) => cachedValues(h.catalog, catalogPath, id, key)));
		expect(stillCached.some((values) => values.head && values.blobs)).toBe(true);

		const open = await h.engine.open();
		const remaining = [...open.repository.index.indexKeys].sort();
		expect(remaining.length).toBeGreaterThan(0);
		expect(remaining.filter((key) => deleted.includes(key))).toEqual([]);
		for (const key of deleted) expect(await cachedValues(h.catalog, catalogPath, id, key), key).toEqual(NONE);
		for (const key of remaining) {
			expect(await cachedValues(h.catalog, catalogPath, id, key), key).toMatchObject({ head: true, blobs: true });
		}

		// What is left is enough: a later load reads no index object from the destination.
		const reads = vi.spyOn(open.repository.destination, "get");
		await open.repository.loadIndex();
		expect(reads.mock.calls.filter(([key]) => key.startsWith(KEY_PREFIX.index))).toEqual([]);
		expect([...open.repository.index.indexKeys].sort()).toEqual(remaining);
		// Nothing is left for the objects grooming deleted; the remaining ones are there still.
		const files = await Promise.all(remaining.map((key) => cachedValues(h.catalog, catalogPath, id, key)));
		expect(files.every((values) => values.head && values.blobs)).toBe(true);
	});
});

/** A repository with three index objects in memory, opened on `catalog`, and the catalog loaded once. */
async function cachedRepository(catalog: Catalog) {
	const clock = new ManualClock(START.toISOString());
	const destination = new MemoryDestination(clock);
	const lock = { mode: "compliance" as const, until: new Date(START.getTime() + DAY_MS) };
	const options = { destination, clock, logger: new MemoryLogger("warn"), scrypt: FAST_SCRYPT };
	const created = await Repository.init(PASSWORD, lock, options);
	for (let i = 0; i < 3; i++) {
		const pack = {
			key: `data/0${i}/${createHash("sha256").update(`pack ${i}`).digest("hex")}`,
			size: 100,
			mode: "compliance" as const,
			until: lock.until.toISOString(),
			blobs: [[0, createHash("sha256").update(`blob ${i}`).digest("hex"), 0, 90, 80] as [number, string, number, number, number]],
		};
		await created.writeRebuiltIndex([pack], []);
	}
	await created.close();
	const repository = await Repository.open(PASSWORD, { ...options, catalog });
	await repository.loadIndex();
	const keys = [...repository.index.indexKeys].sort();
	return { destination, repository, keys };
}

describe("the index load drops cached index objects", () => {
	it("never after a listing cut short or a load that failed, and never another repository's", async () => {
		const catalog = await openCatalog("memory://", process.cwd());
		const other = await cachedRepository(catalog);
		const { destination, repository, keys } = await cachedRepository(catalog);
		expect(keys.length).toBeGreaterThanOrEqual(3);
		const [gone, unreadable] = keys as [string, string];
		for (const key of keys)
			expect(await cachedValues(catalog, undefined, repository.id, key)).toEqual({ ...NONE, head: true, blobs: true });
		// Grooming deleted every version of one index object.
		destination.objects.delete(gone);

		// The listing drops after its first entry: the load fails, and the catalog keeps what it had.
		const listVersions = destination.listVersions.bind(destination);
		const listing = vi.spyOn(destination, "listVersions").mockImplementation((prefix, options) =>
			(async function* () {
				let yielded = 0;
				for await (const version of listVersions(prefix, options)) {
					if (yielded++ === 1) throw new Error("connection reset while listing");
					yield version;
				}
			})(),
		);
		await expect(repository.loadIndex()).rejects.toThrow(/connection reset/);
		expect(await cachedValues(catalog, undefined, repository.id, gone)).toMatchObject({ head: true, blobs: true });
		listing.mockRestore();

		// The listing is whole, but an index object cannot be read (the store stopped answering): still nothing deleted.
		await catalog.delete(`index-head:${repository.id}:${unreadable}`);
		const get = destination.get.bind(destination);
		const reads = vi.spyOn(destination, "get").mockImplementation(async (key, options) => {
			// What the retry layer throws once its budget is spent.
			if (key === unreadable) throw Object.assign(new Error("memory: is unreachable"), { code: "UNREACHABLE" });
			return get(key, options);
		});
		await expect(repository.loadIndex()).rejects.toThrow(/unreachable/);
		expect(await cachedValues(catalog, undefined, repository.id, gone)).toMatchObject({ head: true, blobs: true });
		reads.mockRestore();

		// A load that completes drops the values of the deleted object only.
		await repository.loadIndex();
		expect([...repository.index.indexKeys]).not.toContain(gone);
		expect(await cachedValues(catalog, undefined, repository.id, gone)).toEqual(NONE);
		for (const key of keys.filter((k) => k !== gone)) {
			expect(await cachedValues(catalog, undefined, repository.id, key)).toMatchObject({ head: true, blobs: true });
		}
		// The other repository sharing the catalog keeps all of its own.
		for (const key of other.keys) {
			expect(await cachedValues(catalog, undefined, other.repository.id, key)).toMatchObject({ head: true, blobs: true });
		}
		await repository.close();
		await other.repository.close();
	});
});

describe("a catalog that holds index objects but no record of them (written by an earlier version)", () => {
	it.each(["memory://", "sqlite"])("finds them in the store (%s) and drops those no longer stored", async (kind) => {
		const dir = await mkdtemp(join(tmpdir(), "holdfast-index-prune-"));
		const catalog = await openCatalog(kind === "sqlite" ? `sqlite://${join(dir, "catalog.sqlite")}` : kind, dir);
		const catalogPath = kind === "sqlite" ? join(dir, "catalog.sqlite") : undefined;
		const { destination, repository, keys } = await cachedRepository(catalog);
		const [gone] = keys as [string];
		expect(await catalog.delete(`index-keys:${repository.id}`)).toBe(true);
		destination.objects.delete(gone);
		await repository.loadIndex();
		expect(await cachedValues(catalog, catalogPath, repository.id, gone)).toEqual(NONE);
		for (const key of keys.filter((k) => k !== gone)) {
			expect(await cachedValues(catalog, catalogPath, repository.id, key)).toMatchObject({ head: true, blobs: true });
		}
		// The record is written again, naming what is still cached.
		expect(await catalog.get(`index-keys:${repository.id}`)).toBeDefined();
		await repository.close();
		await catalog.disconnect();
		await rm(dir, { recursive: true, force: true });
	});
});
