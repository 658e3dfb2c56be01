import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { blobId } from "./blob-codec.js";
import { BlobWork, type WorkerKeys } from "./blob-work.js";
import { Chunker } from "./chunker.js";

const keys: WorkerKeys = {
	encryption: Buffer.alloc(32, 1),
	blobMac: Buffer.alloc(32, 2),
	chunkerSeed: Buffer.from("zero runs"),
	chunker: { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 },
};

/** The cuts and IDs of the plain gear loop and a hash per chunk: what any shortcut must match. */
function reference(data: Uint8Array, final: boolean): { lengths: number[]; ids: string[] } {
	const chunker = new Chunker(keys.chunkerSeed, keys.chunker);
	const lengths: number[] = [];
	const ids: string[] = [];
	for (let at = 0; at < data.length; ) {
		const length = chunker.cut(data.subarray(at), final);
		if (length <= 0) break;
		lengths.push(length);
		ids.push(blobId(keys, data.subarray(at, at + length)));
		at += length;
	}
	return { lengths, ids };
}

describe("BlobWork.chunk", () => {
	it("cuts and names runs of zeros exactly as the gear loop and the hash do", () => {
		const data = Buffer.concat([
			randomBytes(300_000),
			Buffer.alloc(2_000_000),
			randomBytes(50_000),
			// shorter than a chunk of zeros: cut by the gear loop
			Buffer.alloc(20_000),
			Buffer.from([1]),
			Buffer.alloc(1_100_000),
			randomBytes(70_000),
			Buffer.alloc(400_000),
		]);
		const work = new BlobWork(keys);
		for (const final of [true, false]) {
			const cut = work.chunk(data, final);
			expect(cut).toEqual(reference(data, final));
		}
		// The runs of zeros were many chunks of one ID.
		const { ids } = work.chunk(data, true);
		expect(ids.length - new Set(ids).size).toBeGreaterThan(5);
	});

	it("cuts a buffer of nothing but zeros like the gear loop, to its last partial chunk", () => {
		const data = Buffer.alloc(3 * 256 * 1024 + 12_345);
		expect(new BlobWork(keys).chunk(data, true)).toEqual(reference(data, true));
		expect(new BlobWork(keys).chunk(data, false)).toEqual(reference(data, false));
	});
});
