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
});
