import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Chunker } from "./chunker.js";

function bytes(size: number, seed: string): Buffer {
	const out = Buffer.alloc(size);
	let block = createHash("sha256").update(seed).digest();
	for (let at = 0; at < size; at += 32) {
		block.copy(out, at);
		block = createHash("sha256").update(block).digest();
	}
	return out;
}

async function* pieces(data: Buffer, size: number): AsyncIterable<Uint8Array> {
	for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

async function chunkSizes(chunker: Chunker, data: Buffer, readSize = 65_536): Promise<number[]> {
	const sizes: number[] = [];
	for await (const chunk of chunker.chunks(pieces(data, readSize))) sizes.push(chunk.length);
	return sizes;
}

const params = { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 };

describe("chunker", () => {
	it("covers the input exactly with chunks inside the bounds, whatever the read size", async () => {
		const data = bytes(3_000_000, "a");
		const chunker = new Chunker(Buffer.from("seed"), params);
		const sizes = await chunkSizes(chunker, data);
		expect(sizes.reduce((a, b) => a + b, 0)).toBe(data.length);
		for (const size of sizes.slice(0, -1)) {
			expect(size).toBeGreaterThanOrEqual(params.min);
			expect(size).toBeLessThanOrEqual(params.max);
		}
		expect(await chunkSizes(chunker, data, 1000)).toEqual(sizes);
		const mean = data.length / sizes.length;
		expect(mean).toBeGreaterThan(params.avg / 2);
		expect(mean).toBeLessThan(params.avg * 2);
	});

	it("cuts differently under another repository key", async () => {
		const data = bytes(2_000_000, "b");
		const one = await chunkSizes(new Chunker(Buffer.from("key one"), params), data);
		const two = await chunkSizes(new Chunker(Buffer.from("key two"), params), data);
		expect(one).not.toEqual(two);
	});

	it("resynchronises after an insertion: most chunks stay the same", async () => {
		const data = bytes(4_000_000, "c");
		const shifted = Buffer.concat([data.subarray(0, 1_000_000), Buffer.from("inserted bytes"), data.subarray(1_000_000)]);
		const chunker = new Chunker(Buffer.from("seed"), params);
		const hashes = async (input: Buffer) => {
			const out = new Set<string>();
			for await (const chunk of chunker.chunks(pieces(input, 65_536))) out.add(createHash("sha256").update(chunk).digest("hex"));
			return out;
		};
		const before = await hashes(data);
		const after = await hashes(shifted);
		const shared = [...after].filter((h) => before.has(h)).length;
		expect(shared / before.size).toBeGreaterThan(0.8);
	});

	it("makes one chunk of a small file and none of an empty one", async () => {
		const chunker = new Chunker(Buffer.from("seed"), params);
		expect(await chunkSizes(chunker, bytes(1000, "d"))).toEqual([1000]);
		expect(await chunkSizes(chunker, Buffer.alloc(0))).toEqual([]);
	});

	it("cuts where the gear hash tested after every byte says, at odd and even offsets, in both phases and at the end", () => {
		const seed = Buffer.from("seed");
		const chunker = new Chunker(seed, params);
		const data = bytes(4_000_000, "e");
		const ends = new Set<number>();
		for (let start = 0; start < 600_000; start += 7_919) {
			for (const length of [params.min + 1, params.avg + 3, params.max, params.max + 1, 300_001]) {
				const piece = data.subarray(start, start + length);
				for (const final of [false, true]) {
					const got = chunker.cut(piece, final);
					expect(got).toBe(referenceCut(seed, piece, final));
					if (got > 0) ends.add(got % 2);
				}
			}
		}
		// Cuts at odd and at even lengths both came up: each half of a two-byte turn was tested.
		expect(ends).toEqual(new Set([0, 1]));
	});
});

/** The chunker's definition, one byte at a time: the gear table from the seed, masks from the top bits. */
function referenceCut(seed: Uint8Array, data: Uint8Array, final: boolean): number {
	let stream = Buffer.alloc(0);
	for (let counter = 0; stream.length < 1024; counter++) {
		stream = Buffer.concat([stream, createHash("sha256").update(seed).update(String(counter)).digest()]);
	}
	const gear = Array.from({ length: 256 }, (_, i) => stream.readInt32LE(i * 4));
	const bits = Math.round(Math.log2(params.avg));
	const top = (count: number) => ~((1 << (32 - count)) - 1) | 0;
	const maskSmall = top(bits + 2);
	const maskLarge = top(bits - 2);
	if (data.length <= params.min) return final ? data.length : -1;
	const end = Math.min(data.length, params.max);
	let hash = 0;
	for (let i = params.min; i < end; i++) {
		hash = ((hash << 1) + (gear[data[i] as number] as number)) | 0;
		if ((hash & (i < params.avg ? maskSmall : maskLarge)) === 0) return i + 1;
	}
	if (end === params.max) return params.max;
	return final ? data.length : -1;
}
