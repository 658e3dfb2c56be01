import { createHash } from "node:crypto";
import { DAY_MS, KEY_PREFIX, ManualClock, openCatalog } from "@holdfast/core";
import { MemoryDestination, MemoryLogger, Repository } from "@holdfast/core/testing";
import { afterEach, describe, expect, it, vi } from "vitest";

/**
 * A repository stays open across a session's runs and loads its index again at each: what it
 * verified before is not verified again, yet every load sees the index as the store holds it.
 */

const START = new Date("2030-01-06T02:00:00Z");
const PASSWORD = "correct horse";
const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };
const LOCK = { mode: "compliance" as const, until: new Date(START.getTime() + DAY_MS) };

const sha = (text: string) => createHash("sha256").update(text).digest("hex");

function pack(name: string) {
	return {
		key: `data/${sha(name).slice(0, 2)}/${sha(name)}`,
		size: 100,
		mode: "compliance" as const,
		until: LOCK.until.toISOString(),
		blobs: [[0, sha(`blob of ${name}`), 0, 90, 80] as [number, string, number, number, number]],
	};
}

const open: Repository[] = [];
afterEach(async () => {
	vi.restoreAllMocks();
	for (const repository of open.splice(0)) await repository.close();
});

async function world() {
	const clock = new ManualClock(START.toISOString());
	const destination = new MemoryDestination(clock);
	const options = { destination, clock, logger: new MemoryLogger("warn"), scrypt: FAST_SCRYPT };
	const created = await Repository.init(PASSWORD, LOCK, options);
	open.push(created);
	/** Another host's repository: it writes index objects this process has not seen. */
	const writeIndex = async (name: string) => {
		clock.advance(60_000);
		return (await created.writeRebuiltIndex([pack(name)], [])) as string;
	};
	const keys = [await writeIndex("a"), await writeIndex("b"), await writeIndex("c")];
	const catalog = await openCatalog("memory://", process.cwd());
	const logger = new MemoryLogger("warn");
	const repository = await Repository.open(PASSWORD, { ...options, logger, catalog });
	open.push(repository);
	await repository.loadIndex();
	const indexReads = vi.spyOn(destination, "get");
	const readsOfIndex = () => indexReads.mock.calls.filter(([key]) => key.startsWith(KEY_PREFIX.index)).map(([key]) => key);
	return { destination, catalog, repository, keys, writeIndex, readsOfIndex, logger };
}

describe("loading the index again in the same process", () => {
	it("reads nothing again while nothing changed, and reads just a new index object", async () => {
		const { repository, keys, writeIndex, readsOfIndex } = await world();
		expect([...repository.index.packs.keys()].sort()).toEqual(["a", "b", "c"].map((n) => pack(n).key).sort());
		const before = [...repository.index.indexKeys];
		for (const key of keys) expect(before).toContain(key);
		await repository.loadIndex();
		expect(readsOfIndex()).toEqual([]);
		const added = await writeIndex("d");
		await repository.loadIndex();
		expect(readsOfIndex()).toEqual([added]);
		expect(repository.index.packs.get(pack("d").key)?.indexKey).toBe(added);
		expect(repository.index.blobs.get(sha("blob of d"))?.packKey).toBe(pack("d").key);
		expect([...repository.index.indexKeys].sort()).toEqual([...before, added].sort());
	});

	it("notices an index object gone from the store", async () => {
		const { destination, repository, keys } = await world();
		const [, gone] = keys as [string, string];
		destination.objects.delete(gone);
		await repository.loadIndex();
		expect(repository.index.indexKeys.has(gone)).toBe(false);
		expect(repository.index.packs.has(pack("b").key)).toBe(false);
		expect(repository.index.blobs.get(sha("blob of b"))).toBeUndefined();
	});

	it("verifies again a cached value that changed, and reads one that was dropped from the store", async () => {
		const { catalog, repository, keys, readsOfIndex, logger } = await world();
		const [first, second] = keys as [string, string];
		// Forged: the JSON of the cached head changed under its old MAC.
		const headKey = `index-head:${repository.id}:${first}`;
		const sealed = (await catalog.get(headKey)) as { t: string; m: string; j: string };
		const forged = JSON.parse(sealed.j) as { packs: { key: string }[] };
		forged.packs = [];
		await catalog.set(headKey, { ...sealed, j: JSON.stringify(forged) });
		// Dropped: the catalog lost another one's head.
		await catalog.delete(`index-head:${repository.id}:${second}`);
		await repository.loadIndex();
		expect(readsOfIndex().sort()).toEqual([first, second].sort());
		expect(repository.index.packs.get(pack("a").key)?.indexKey).toBe(first);
		expect(repository.index.packs.get(pack("b").key)?.indexKey).toBe(second);
		expect(logger.lines.filter(({ line }) => line.includes("did not verify"))).toHaveLength(1);
	});
});
