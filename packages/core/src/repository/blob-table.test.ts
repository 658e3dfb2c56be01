import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { BlobTable } from "./blob-table.js";
import type { BlobLocation } from "./index-file.js";

const id = () => randomBytes(32).toString("hex");
const at = (packKey: string, offset: number, type: "data" | "tree" = "data"): BlobLocation => ({
	type,
	packKey,
	offset,
	length: offset + 10,
	rawLength: offset + 5,
});

describe("BlobTable", () => {
	it("answers like a Map for many blobs, through growth and rehashing", () => {
		const table = new BlobTable();
		const map = new Map<string, BlobLocation>();
		for (let i = 0; i < 5000; i++) {
			const blob = id();
			const location = at(`data/p${i % 37}`, i * 3, i % 5 === 0 ? "tree" : "data");
			table.set(blob, location);
			map.set(blob, location);
		}
		expect(table.size).toBe(5000);
		for (const [blob, location] of map) expect(table.get(blob)).toEqual(location);
		expect(table.get(id())).toBeUndefined();
		expect(table.has(id())).toBe(false);
		expect(new Map(table)).toEqual(map);
		expect([...table.values()].filter((l) => l.type === "tree")).toHaveLength(1000);
	});

	it("replaces a location, deletes and brings an ID back", () => {
		const table = new BlobTable();
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
		const table = new BlobTable();
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
});
