import { randomBytes } from "node:crypto";
import { openCatalog } from "@holdfast/core";
import { MemoryDestination, MemoryLogger, Repository } from "@holdfast/core/testing";
import { describe, expect, it } from "vitest";

const PASSWORD = "correct horse";
const FAST_SCRYPT = { N: 1024, r: 8, p: 1 };
const hex = () => randomBytes(32).toString("hex");

/**
 * A repository whose index lists synthetic packs in three index objects, then drops one pack by
 * a tombstone. `backwards`: the store records each object as written before the one before it,
 * so a load that reads them in that order must still merge them in their own.
 */
async function syntheticRepository(backwards = false) {
	// A second a reading: index objects are never created in the same millisecond, so their order is known.
	let time = Date.now();
	const clock = { now: () => new Date((time += 1000)) };
	let storeTime = Date.now();
	const destination = new MemoryDestination(backwards ? { now: () => new Date((storeTime -= 1000)) } : clock);
	const lock = { mode: "compliance" as const, until: new Date(Date.now() + 86_400_000) };
	const options = { destination, clock, logger: new MemoryLogger("warn"), scrypt: FAST_SCRYPT };
	const repository = await Repository.init(PASSWORD, lock, options);
	const packs = Array.from({ length: 6 }, (_, p) => ({
		key: `data/${p}0/${hex()}`,
		size: 10_000,
		mode: "compliance" as const,
		until: lock.until.toISOString(),
		blobs: Array.from({ length: 40 }, (_, b): [number, string, number, number, number] => [
			b % 3 === 0 ? 1 : 0,
			hex(),
			b * 100,
			90,
			80,
		]),
	}));
	// The same blob in two packs, the second locked longer: the merged index keeps the longer copy.
	const shared = hex();
	(packs[1] as (typeof packs)[number]).blobs.push([0, shared, 5000, 10, 9]);
	(packs[4] as (typeof packs)[number]).blobs.push([0, shared, 6000, 11, 10]);
	(packs[4] as (typeof packs)[number]).until = new Date(lock.until.getTime() + 86_400_000).toISOString();
	// The same blob in two packs locked as long, listed by different index objects: the older object's copy stays.
	const sameLock = hex();
	(packs[2] as (typeof packs)[number]).blobs.push([0, sameLock, 7000, 12, 11]);
	(packs[5] as (typeof packs)[number]).blobs.push([0, sameLock, 8000, 13, 12]);
	for (let i = 0; i < 3; i++) await repository.writeRebuiltIndex(packs.slice(i * 2, i * 2 + 2), []);
	const gone = packs[0]?.key as string;
	await repository.writeIndex([], { deleted: [gone] });
	await repository.close();
	return { options, packs, shared, sameLock, gone };
}

async function opened(options: Awaited<ReturnType<typeof syntheticRepository>>["options"], catalog?: unknown) {
	return Repository.open(PASSWORD, { ...options, ...(catalog ? { catalog } : {}) } as never);
}

describe("a synthetic index through the compact table and the catalog's packed form", () => {
	it.each([
		["in the order they were written", false],
		["written in the store's listing in reverse", true],
	])(
		"merges the same with no catalog, a cold one and a warm one; tombstones and the longer lock apply (%s)",
		async (_, backwards) => {
			const { options, packs, shared, sameLock, gone } = await syntheticRepository(backwards);
			const plain = await opened(options);
			await plain.loadIndex();
			const expected = new Map(plain.index.blobs);
			expect(expected.size).toBe(5 * 40 + 2);
			expect(plain.index.blobs.get(shared)?.packKey).toBe(packs[4]?.key);
			expect(plain.index.blobs.get(sameLock)?.packKey).toBe(packs[2]?.key);
			for (const blob of packs[0]?.blobs ?? []) expect(plain.index.blobs.has(blob[1])).toBe(false);
			expect(plain.index.deleted.has(gone)).toBe(true);
			const [type, id, offset, length, rawLength] = (packs[2] as (typeof packs)[number]).blobs[3] as [
				number,
				string,
				number,
				number,
				number,
			];
			expect(plain.index.blobs.get(id)).toEqual({
				type: type === 1 ? "tree" : "data",
				packKey: packs[2]?.key,
				offset,
				length,
				rawLength,
			});
			await plain.close();

			const catalog = await openCatalog("memory://", process.cwd());
			for (const pass of ["cold", "warm"]) {
				const repository = await opened(options, catalog);
				await repository.loadIndex();
				expect(new Map(repository.index.blobs), pass).toEqual(expected);
				// Each index object is cached packed: the warm pass merges from these values.
				for (const key of repository.index.indexKeys) {
					expect(await catalog.get(`index-blobs:${repository.id}:${key}`), key).toBeDefined();
				}
				await repository.close();
			}
		},
	);

	it("without blob locations: packs, tombstones and counts are there, and any use of blobs is refused", async () => {
		const { options, packs, gone } = await syntheticRepository();
		const catalog = await openCatalog("memory://", process.cwd());
		for (const pass of ["cold", "warm"]) {
			const repository = await opened(options, catalog);
			await repository.loadIndex({ blobs: false });
			expect(repository.index.deleted.has(gone), pass).toBe(true);
			expect(repository.index.packs.get(packs[3]?.key as string)?.blobCount).toBe(40);
			expect(repository.index.packs.has(gone)).toBe(false);
			expect(() => repository.index.blobs).toThrow(/without its blob locations/);
			await repository.close();
		}
		// A later full load of the same repository finds every blob from the catalog.
		const repository = await opened(options, catalog);
		await repository.loadIndex();
		expect(repository.index.blobs.size).toBe(5 * 40 + 2);
		await repository.close();
	});
});
