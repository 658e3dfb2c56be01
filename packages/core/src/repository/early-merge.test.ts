import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { encodePackedBlobs, packBlobs } from "./blob-table.js";
import { EarlyMerge } from "./early-merge.js";
import type { DecodedIndex } from "./index-decode.js";
import { type IndexFile, loadedIndexFile, MasterIndex } from "./index-file.js";

const until = "2027-01-01T00:00:00.000Z";
const hex = () => randomBytes(32).toString("hex");

/** An index object created at `created` listing one pack of `blobs` (IDs given), decoded as a cold load decodes it. */
function decoded(created: string, ids: string[], form: "stored" | "packed" | "head" = "stored"): DecodedIndex {
	const file: IndexFile = {
		v: 1,
		created,
		packs: [
			{
				key: `data/00/${hex()}`,
				size: 1000,
				mode: "compliance",
				until,
				blobs: ids.map((id, i): [number, string, number, number, number] => [0, id, i * 10, 10, 9]),
			},
		],
		locks: [],
		self: { mode: "compliance", until },
	};
	const loaded = loadedIndexFile(file, true);
	const packed = loaded.packs.map((pack) => pack.packed ?? packBlobs([]));
	const head = { ...loaded, packs: loaded.packs.map((pack) => ({ ...pack, packed: undefined })) };
	if (form === "head") return { file: head };
	return form === "packed" ? { file: head, packed } : { file: head, stored: encodePackedBlobs(packed) };
}

describe("merging index objects as a cold load decodes them", () => {
	it("merges objects that arrive out of turn once those before them are in, and keeps the older copy of a duplicate", () => {
		const shared = hex();
		const objects = [
			decoded("2026-01-01T00:00:00.000Z", [hex(), shared]),
			decoded("2026-01-02T00:00:00.000Z", [shared, hex()], "packed"),
			decoded("2026-01-03T00:00:00.000Z", [hex()]),
		];
		const index = new MasterIndex();
		const early = new EarlyMerge(index, new Map());
		early.arrived(2, "index/c", objects[2]);
		early.arrived(1, "index/b", objects[1]);
		expect(index.indexKeys.size).toBe(0);
		early.arrived(0, "index/a", objects[0]);
		expect(early.done(3)).toBe(true);
		expect([...index.indexKeys]).toEqual(["index/a", "index/b", "index/c"]);
		expect(index.blobs.size).toBe(4);
		// Both copies are locked as long: the first merged stays, as in the merge in order.
		expect(index.blobs.get(shared)?.packKey).toBe(objects[0]?.file.packs[0]?.key);
		expect(early.merged.map((file) => file.created)).toEqual(objects.map((o) => o?.file.created));
	});

	it("gives up at an object older than one already merged, and at a head with no blobs beside it", () => {
		const older = new EarlyMerge(new MasterIndex(), new Map());
		older.arrived(0, "index/a", decoded("2026-01-02T00:00:00.000Z", [hex()]));
		older.arrived(1, "index/b", decoded("2026-01-01T00:00:00.000Z", [hex()]));
		expect(older.done(2)).toBe(false);

		// The same time: the key decides, as it does in the merge in order.
		const sameTime = new EarlyMerge(new MasterIndex(), new Map());
		sameTime.arrived(0, "index/b", decoded("2026-01-01T00:00:00.000Z", [hex()]));
		sameTime.arrived(1, "index/a", decoded("2026-01-01T00:00:00.000Z", [hex()]));
		expect(sameTime.done(2)).toBe(false);

		const warm = new EarlyMerge(new MasterIndex(), new Map());
		warm.arrived(0, "index/a", decoded("2026-01-01T00:00:00.000Z", [hex()], "head"));
		expect(warm.done(1)).toBe(false);
	});

	it("passes over an object that could not be read, and is not done while one is missing", () => {
		const index = new MasterIndex();
		const early = new EarlyMerge(index, new Map());
		early.arrived(0, "index/a", undefined);
		early.arrived(2, "index/c", decoded("2026-01-03T00:00:00.000Z", [hex()]));
		expect(early.done(3)).toBe(false);
		early.arrived(1, "index/b", decoded("2026-01-02T00:00:00.000Z", [hex()]));
		expect(early.done(3)).toBe(true);
		expect([...index.indexKeys]).toEqual(["index/b", "index/c"]);
	});

	it("sizes the table from the first object with enough blobs and the listed sizes of all", () => {
		const index = new MasterIndex();
		const ids = Array.from({ length: 1000 }, hex);
		// Ten objects the size of this one: room for about ten times its blobs, made at once.
		const sizes = new Map(Array.from({ length: 10 }, (_, i) => [`index/${i}`, 50_000]));
		const early = new EarlyMerge(index, sizes);
		early.arrived(0, "index/0", decoded("2026-01-01T00:00:00.000Z", ids));
		const reserved = new MasterIndex();
		reserved.blobs.reserve(10_000);
		const small = new MasterIndex();
		small.blobs.reserve(1000);
		expect(index.blobs.capacity).toBe(reserved.blobs.capacity);
		expect(index.blobs.capacity).toBeGreaterThan(small.blobs.capacity);
	});
});
