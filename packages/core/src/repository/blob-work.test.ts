import { randomBytes } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { BLOB_OVERHEAD, blobId, decodeBlob, encodeBlob } from "./blob-codec.js";
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

describe("BlobWork.chunk without zero runs", () => {
	it("cuts data that starts with no run of zeros without ever cutting a chunk of zeros", () => {
		const cut = vi.spyOn(Chunker.prototype, "cut");
		try {
			const data = randomBytes(700_000);
			const work = new BlobWork(keys);
			const found = work.chunk(data, true);
			expect(found).toEqual(reference(data, true));
			// The reference cut as often; the work itself cut once per chunk, nothing more.
			expect(cut).toHaveBeenCalledTimes(2 * found.lengths.length);
		} finally {
			cut.mockRestore();
		}
	});
});

describe("BlobWork.sealInto", () => {
	it("seals regions back to back into a buffer, each opening to its plaintext, compressed or not", () => {
		const work = new BlobWork(keys);
		const text = Buffer.from("retention snapshot ".repeat(4000));
		const data = Buffer.concat([randomBytes(5000), text, randomBytes(100)]);
		const regions = new Uint32Array([0, 5000, 5000, text.length, 5000 + text.length, 100]);
		const out = Buffer.alloc(data.length + 3 * BLOB_OVERHEAD + 50, 0xee);
		const lengths = work.sealInto(data, regions, true, out, 50);
		expect(lengths.length).toBe(3);
		// Random data is stored as is; the text shrinks.
		expect(lengths[0]).toBe(5000 + BLOB_OVERHEAD);
		expect(lengths[1]).toBeLessThan(text.length / 4);
		expect(out.subarray(0, 50).every((byte) => byte === 0xee)).toBe(true);
		let at = 50;
		for (let i = 0; i < 3; i++) {
			const plain = data.subarray(regions[2 * i], (regions[2 * i] as number) + (regions[2 * i + 1] as number));
			const sealed = out.subarray(at, at + (lengths[i] as number));
			expect(Buffer.from(decodeBlob(keys, sealed, blobId(keys, plain), "test")).equals(plain)).toBe(true);
			at += lengths[i] as number;
		}
	});

	it("hashes and seals in one call exactly as hash and sealInto do apart", () => {
		const work = new BlobWork(keys);
		const data = Buffer.concat([randomBytes(3000), Buffer.from("invoice ".repeat(500)), randomBytes(10)]);
		const regions = new Uint32Array([0, 3000, 3000, 4000, 7000, 10]);
		const out = Buffer.alloc(data.length + 3 * BLOB_OVERHEAD);
		const { ids, lengths } = work.hashSealInto(data, regions, true, out, 0);
		expect(ids).toEqual(work.hash(data, regions));
		let at = 0;
		for (let i = 0; i < 3; i++) {
			const plain = data.subarray(regions[2 * i], (regions[2 * i] as number) + (regions[2 * i + 1] as number));
			const sealed = out.subarray(at, at + (lengths[i] as number));
			expect(Buffer.from(decodeBlob(keys, sealed, ids[i] as string, "test")).equals(plain)).toBe(true);
			at += lengths[i] as number;
		}
	});

	it("gives every sealed blob a nonce of its own, across many more blobs than are drawn at once", () => {
		const work = new BlobWork(keys);
		const count = 2000;
		const data = Buffer.alloc(count * 8, 7);
		const regions = new Uint32Array(2 * count);
		for (let i = 0; i < count; i++) regions.set([i * 8, 8], 2 * i);
		const out = Buffer.alloc(count * (8 + BLOB_OVERHEAD));
		const lengths = work.sealInto(data, regions, false, out, 0);
		const seen = new Set<string>();
		for (let i = 0, at = 0; i < count; at += lengths[i] as number, i++) {
			const sealed = out.subarray(at, at + (lengths[i] as number));
			seen.add(sealed.subarray(0, 12).toString("hex"));
			expect(Buffer.from(decodeBlob(keys, sealed, blobId(keys, data.subarray(0, 8)), "test")).equals(data.subarray(0, 8))).toBe(
				true,
			);
		}
		expect(seen.size).toBe(count);
	});

	it("seals blobs of many cipher pieces, and zstd bodies made in the thread's own buffer, call after call", () => {
		const work = new BlobWork(keys);
		const text = Buffer.from("lock window ".repeat(60_000));
		for (const data of [randomBytes(300_000), text, text.subarray(0, 5000), randomBytes(70_000)]) {
			const out = Buffer.alloc(data.length + BLOB_OVERHEAD);
			const [length] = work.sealInto(data, new Uint32Array([0, data.length]), true, out, 0);
			const sealed = out.subarray(0, length);
			if (data === text) expect(length).toBeLessThan(text.length / 10);
			expect(Buffer.from(decodeBlob(keys, sealed, blobId(keys, data), "test")).equals(data)).toBe(true);
		}
	});

	it("refuses to seal past the end of the buffer rather than write a truncated blob", () => {
		const work = new BlobWork(keys);
		const data = randomBytes(1000);
		const out = Buffer.alloc(1000 + BLOB_OVERHEAD - 1);
		expect(() => work.sealInto(data, new Uint32Array([0, 1000]), false, out, 0)).toThrow(/no room/);
	});
});

describe("BlobWork.openRange", () => {
	/** Blobs sealed back to back, as a pack's range holds them: stored, zstd, Brotli (a tree) and a large stored one. */
	function range(blobs: readonly { data: Buffer; kind: "data" | "tree" }[]) {
		const sealed = blobs.map(({ data, kind }) => encodeBlob(keys, data, true, kind));
		const regions = new Uint32Array(2 * blobs.length);
		let at = 0;
		sealed.forEach((s, i) => {
			regions.set([at, s.length], 2 * i);
			at += s.length;
		});
		return {
			data: Buffer.concat(sealed),
			regions,
			ids: blobs.map(({ data }) => blobId(keys, data)),
			rawLengths: Uint32Array.from(blobs, ({ data }) => data.length),
		};
	}
	const blobs = [
		{ data: randomBytes(3000), kind: "data" as const },
		{ data: Buffer.from("retention window ".repeat(9000)), kind: "data" as const },
		{
			data: Buffer.from(JSON.stringify({ nodes: Array.from({ length: 300 }, (_, i) => ({ name: `f${i}` })) })),
			kind: "tree" as const,
		},
		{ data: randomBytes(700_000), kind: "data" as const },
	];

	it("opens stored, zstd and Brotli blobs, pieces of large ones included, to their plaintexts", () => {
		const work = new BlobWork(keys);
		const { data, regions, ids, rawLengths } = range(blobs);
		const opened = work.openRange(data, regions, ids, "data/ab/abcd", rawLengths);
		expect(opened).toHaveLength(4);
		for (const [i, plain] of opened.entries()) {
			expect(Buffer.from(plain as Uint8Array).equals(blobs[i]?.data as Buffer), `blob ${i}`).toBe(true);
		}
	});

	it("opens a range into one buffer it keeps: the next range reuses it, so a caller must be done first", () => {
		const work = new BlobWork(keys);
		const first = range(blobs.slice(0, 2));
		const a = work.openRange(first.data, first.regions, first.ids, "data/ab/abcd", first.rawLengths);
		expect((a[0] as Uint8Array).buffer).toBe((a[1] as Uint8Array).buffer);
		const second = range([{ data: Buffer.alloc(3000, 9), kind: "data" }]);
		const b = work.openRange(second.data, second.regions, second.ids, "data/ab/abcd", second.rawLengths);
		expect((b[0] as Uint8Array).buffer).toBe((a[0] as Uint8Array).buffer);
		expect(Buffer.from(b[0] as Uint8Array).equals(Buffer.alloc(3000, 9))).toBe(true);
	});

	it("fails a blob whose index length is short or long, or whose bytes were changed, and spares the others when asked", () => {
		const work = new BlobWork(keys);
		const { data, regions, ids, rawLengths } = range(blobs);
		const wrong = Uint32Array.from(rawLengths);
		wrong[0] = (wrong[0] as number) - 1; // stored: decrypted into a scratch, not in place
		wrong[1] = (wrong[1] as number) + 1; // zstd: one byte short of what the index says
		data[(regions[4] as number) + 40] ^= 1; // the tree: no longer authenticates
		const damaged: string[] = [];
		const opened = work.openRange(data, regions, ids, "data/ab/abcd", wrong, (i, error) =>
			damaged.push(`${i}: ${error.message}`),
		);
		expect(opened.map((plain) => plain === undefined)).toEqual([true, true, true, false]);
		expect(damaged).toEqual([
			`0: blob ${ids[0]?.slice(0, 16)} in data/ab/abcd: 3000 bytes where the index says 2999`,
			expect.stringMatching(
				/^1: blob [0-9a-f]{16} in data\/ab\/abcd: (153000 bytes where the index says 153001|cannot decompress)$/,
			),
			expect.stringMatching(/^2: .*authentication failed/),
		]);
		expect(Buffer.from(opened[3] as Uint8Array).equals(blobs[3]?.data as Buffer)).toBe(true);
		expect(() => work.openRange(data, regions, ids, "data/ab/abcd", wrong)).toThrow(/3000 bytes where the index says 2999/);
	});
});
