import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { BlobTable, decodePackedBlobs, encodePackedBlobs, packBlobs } from "./blob-table.js";
import type { BlobLocation } from "./index-file.js";

const id = () => randomBytes(32).toString("hex");
const at = (packKey: string, offset: number, type: "data" | "tree" = "data"): BlobLocation => ({
	type,
	packKey,
	offset,
	length: offset + 10,
	rawLength: offset + 5,
});

/** The table with its records in memory, and spilled to a file early (past 100 blobs). */
const kinds = [
	{ name: "in memory", make: () => new BlobTable(), onDisk: false },
	{ name: "with records on disk", make: () => new BlobTable({ spillAbove: 100 }), onDisk: true },
];

describe.each(kinds)("BlobTable $name", ({ make, onDisk }) => {
	it("answers like a Map for many blobs, through growth and rehashing", () => {
		const table = make();
		const map = new Map<string, BlobLocation>();
		// More than one write buffer of records, so some are read back from the file.
		for (let i = 0; i < 40_000; i++) {
			const blob = id();
			const location = at(`data/p${i % 37}`, i * 3, i % 5 === 0 ? "tree" : "data");
			table.set(blob, location);
			map.set(blob, location);
		}
		expect(table.onDisk).toBe(onDisk);
		expect(table.size).toBe(40_000);
		for (const [blob, location] of map) expect(table.get(blob)).toEqual(location);
		expect(table.get(id())).toBeUndefined();
		expect(table.has(id())).toBe(false);
		expect(new Map(table)).toEqual(map);
		expect([...table.values()].filter((l) => l.type === "tree")).toHaveLength(8000);
		// The first blob's record is long written out: changing it changes what is read back.
		const [first] = map.keys() as IterableIterator<string>;
		table.set(first as string, at("data/moved", 9, "tree"));
		expect(table.get(first as string)).toEqual(at("data/moved", 9, "tree"));
		expect(table.size).toBe(40_000);
	});

	it("tells apart IDs that share their first 8 bytes (the word the hash keeps), and misses a third", () => {
		const table = make();
		for (let i = 0; i < 300; i++) table.set(id(), at("data/filler", i));
		const prefix = "ab".repeat(8);
		const [one, two, three] = [1, 2, 3].map(() => prefix + randomBytes(24).toString("hex")) as [string, string, string];
		table.set(one, at("data/one", 1));
		table.set(two, at("data/two", 2));
		expect(table.get(one)).toEqual(at("data/one", 1));
		expect(table.get(two)).toEqual(at("data/two", 2));
		expect(table.get(three)).toBeUndefined();
		expect(table.has(three)).toBe(false);
		expect(table.size).toBe(302);
	});

	it("merges packed blobs as setAt would, through rehashing mid-pack, keeping the copy `keep` says stays", () => {
		const byOne = make();
		const byPack = make();
		const keepFirst = (current: string) => current === "data/first";
		const packs: [string, [number, string, number, number, number][]][] = [];
		// A pack that grows the table several times over, then one that repeats some IDs of the first.
		const first = Array.from({ length: 5000 }, (_, i): [number, string, number, number, number] => [
			i % 2,
			id(),
			i,
			i + 1,
			i + 2,
		]);
		packs.push(["data/first", first]);
		packs.push([
			"data/second",
			[
				...first.slice(0, 100).map(([, blob]): [number, string, number, number, number] => [0, blob, 7, 8, 9]),
				[0, id(), 1, 2, 3],
			],
		]);
		for (const [packKey, blobs] of packs) {
			const packed = packBlobs(blobs);
			byPack.setPacked(packed, packKey, keepFirst);
			for (let i = 0; i < packed.count; i++) {
				const n = packed.numbers.subarray(i * 4, i * 4 + 4);
				byOne.setAt(packed.ids, i * 8, packKey, n[0] as number, n[1] as number, n[2] as number, n[3] as number, keepFirst);
			}
		}
		expect(byPack.size).toBe(5001);
		expect(new Map(byPack)).toEqual(new Map(byOne));
		expect(byPack.get(first[0]?.[1] as string)?.packKey).toBe("data/first");
		// Without `keep`, the later copy replaces the earlier.
		byPack.setPacked(packBlobs(first.slice(0, 1)), "data/third");
		expect(byPack.get(first[0]?.[1] as string)?.packKey).toBe("data/third");
	});

	it("keeps a location past 32 bits beside the table, and takes it back in", () => {
		const table = make();
		const blob = id();
		table.set(blob, at("data/a", 1));
		table.set(blob, at("data/huge", 2 ** 33));
		expect(table.size).toBe(1);
		expect(table.get(blob)).toEqual(at("data/huge", 2 ** 33));
		expect(new Map(table).get(blob)).toEqual(at("data/huge", 2 ** 33));
		table.set(blob, at("data/b", 3));
		expect(table.get(blob)).toEqual(at("data/b", 3));
		expect(table.size).toBe(1);
	});

	it("replaces a location, deletes and brings an ID back", () => {
		const table = make();
		const blob = id();
		table.set(blob, at("data/a", 1));
		table.set(blob, at("data/b", 2, "tree"));
		expect(table.size).toBe(1);
		expect(table.get(blob)).toEqual(at("data/b", 2, "tree"));
		expect(table.delete(blob)).toBe(true);
		expect(table.delete(blob)).toBe(false);
		expect(table.has(blob)).toBe(false);
		expect(table.size).toBe(0);
		expect([...table]).toEqual([]);
		table.set(blob, at("data/c", 3));
		expect(table.get(blob)).toEqual(at("data/c", 3));
		expect(table.size).toBe(1);
	});

	it("drops a whole pack, and keeps IDs of another shape apart", () => {
		const table = make();
		table.reserve(100);
		const kept = id();
		const dropped = [id(), id()];
		table.set(kept, at("data/keep", 0));
		for (const blob of dropped) table.set(blob, at("data/gone", 5));
		table.set("short-id", at("data/gone", 7));
		table.set("other-id", at("data/keep", 8));
		expect(table.size).toBe(5);
		table.deletePack("data/gone");
		expect(table.size).toBe(2);
		expect([...table.keys()].sort()).toEqual([kept, "other-id"].sort());
		for (const blob of dropped) expect(table.get(blob)).toBeUndefined();
		expect(table.get("other-id")).toEqual(at("data/keep", 8));
	});

	it("lists the blobs of chosen packs only", () => {
		const table = make();
		const wanted = [id(), id()];
		for (const blob of wanted) table.set(blob, at("data/wanted", 1));
		for (let i = 0; i < 50; i++) table.set(id(), at("data/other", 2));
		table.set("odd-id", at("data/wanted", 3));
		const found = new Map(table.inPacks(new Set(["data/wanted", "data/absent"])));
		expect([...found.keys()].sort()).toEqual([...wanted, "odd-id"].sort());
		expect(found.get("odd-id")).toEqual(at("data/wanted", 3));
		expect([...table.inPacks(new Set(["data/absent"]))]).toEqual([]);
	});
});

describe("packed blobs", () => {
	it("round-trip through their catalog value and merge into a table", () => {
		const blobs: [number, string, number, number, number][] = [
			[0, id(), 0, 100, 60],
			[1, id(), 100, 4_000_000, 3_999_000],
			[0, "not-hex", 5, 6, 7],
			[0, id(), 2 ** 33, 10, 5],
		];
		const packed = packBlobs(blobs);
		expect(packed.count).toBe(2);
		expect(packed.odd).toEqual([blobs[2], blobs[3]]);
		const empty = packBlobs([]);
		const value = encodePackedBlobs([empty, packed]);
		// Read back from a copy that starts off a word boundary, as a store may hand it out.
		const shifted = new Uint8Array(value.byteLength + 1).subarray(1);
		shifted.set(value);
		const decoded = decodePackedBlobs(shifted, [0, 4]);
		expect(decoded).toHaveLength(2);
		expect(decoded?.[0]?.count).toBe(0);
		const restored = decoded?.[1];
		expect(restored?.odd).toEqual([blobs[2], blobs[3]]);
		expect(restored?.numbers).toEqual(packed.numbers);
		const table = new BlobTable();
		for (let i = 0; i < (restored?.count ?? 0); i++) {
			const n = restored?.numbers.subarray(i * 4, i * 4 + 4) as Uint32Array;
			table.setAt(restored?.ids as Uint32Array, i * 8, "data/p", n[0] as number, n[1] as number, n[2] as number, n[3] as number);
		}
		expect(table.get(blobs[0][1])).toEqual({ type: "data", packKey: "data/p", offset: 0, length: 100, rawLength: 60 });
		expect(table.get(blobs[1][1])).toEqual({
			type: "tree",
			packKey: "data/p",
			offset: 100,
			length: 4_000_000,
			rawLength: 3_999_000,
		});
		expect(table.packKeyAt(restored?.ids as Uint32Array, 8)).toBe("data/p");
	});

	it("a catalog value that does not fit the index object's packs is refused", () => {
		const value = encodePackedBlobs([packBlobs([[0, id(), 0, 1, 1]]), packBlobs([[1, id(), 2, 3, 4]])]);
		expect(decodePackedBlobs(value, [1, 1])).toHaveLength(2);
		// Another count of packs or of blobs in a pack.
		expect(decodePackedBlobs(value, [1])).toBeUndefined();
		expect(decodePackedBlobs(value, [1, 2])).toBeUndefined();
		// Cut short, or with a word too many.
		expect(decodePackedBlobs(value.subarray(0, value.length - 4), [1, 1])).toBeUndefined();
		const longer = new Uint8Array(value.length + 4);
		longer.set(value);
		expect(decodePackedBlobs(longer, [1, 1])).toBeUndefined();
		expect(decodePackedBlobs(new Uint8Array(0), [])).toBeUndefined();
	});
});
