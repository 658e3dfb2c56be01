import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CODEC, compressPieces, decompress } from "./compression.js";
import type { IndexFile, IndexPack } from "./index-file.js";
import { scanIndexJson } from "./index-scan.js";
import { indexJsonPieces } from "./index-store.js";

function pack(blobs: number): IndexPack {
	return {
		key: `data/${randomBytes(32).toString("hex")}`,
		version: "v-1",
		size: blobs * 4096,
		mode: "compliance",
		until: "2027-01-01T00:00:00.000Z",
		blobs: Array.from({ length: blobs }, (_, i) => [i % 2, randomBytes(32).toString("hex"), i * 4096, 4000, 9000 + i]),
	};
}

describe("an index object's JSON written a pack at a time", () => {
	it("is the text JSON.stringify gives, whatever fields come before and after the packs", () => {
		const shapes: IndexFile[] = [
			{
				v: 1,
				created: "2026-11-28T00:00:00.000Z",
				packs: [pack(3), pack(1), pack(0)],
				locks: [{ key: "index/x", mode: "compliance", until: "2027-01-01T00:00:00.000Z" }],
				self: { mode: "governance", until: "2027-01-01T00:00:00.000Z" },
				deleted: ["data/gone"],
			},
			{ v: 1, created: "2026-11-28T00:00:00.000Z", packs: [], locks: [], self: { mode: "compliance", until: "x" } },
			{ packs: [pack(2)] } as unknown as IndexFile,
			{ v: 1, packs: [pack(2)] } as unknown as IndexFile,
		];
		for (const file of shapes) {
			const pieces = [...indexJsonPieces(file)];
			expect(pieces.join("")).toBe(JSON.stringify(file));
			// One piece per pack and one on each side: no piece holds the whole list.
			expect(pieces).toHaveLength(file.packs.length + 2);
		}
	});

	it("compresses piece by piece to what decompresses to the same text, read by the fast scan", async () => {
		const file: IndexFile = {
			v: 1,
			created: "2026-11-28T00:00:00.000Z",
			packs: [pack(2000), pack(500)],
			locks: [],
			self: { mode: "compliance", until: "2027-01-01T00:00:00.000Z" },
		};
		const text = JSON.stringify(file);
		const packed = await compressPieces(indexJsonPieces(file));
		expect(packed[0]).toBe(CODEC.brotli);
		expect(packed.length).toBeLessThan(text.length * 0.7);
		const back = decompress(packed, "index");
		expect(back.toString("utf8")).toBe(text);
		const scanned = scanIndexJson(back);
		expect(scanned?.packed.map((p) => p.count)).toEqual([2000, 500]);
	});
});
