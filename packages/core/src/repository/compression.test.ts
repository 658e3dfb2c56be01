import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CODEC, compress, decompress, sampleEntropy } from "./compression.js";

describe("compression", () => {
	it("round-trips and shrinks text", async () => {
		const text = Buffer.from("the ledger of the quarter, line by line\n".repeat(5000));
		const packed = compress(text, true);
		expect(packed[0]).toBe(CODEC.brotli);
		expect(packed.length).toBeLessThan(text.length / 10);
		expect(decompress(packed, "t").equals(text)).toBe(true);
	});

	it("stores random data without compressing it", async () => {
		const random = randomBytes(300_000);
		expect(sampleEntropy(random)).toBeGreaterThan(7.9);
		const packed = compress(random, true);
		expect(packed[0]).toBe(CODEC.stored);
		expect(decompress(packed, "r").equals(random)).toBe(true);
	});

	it("measures a sample's entropy in bits per byte, call after call", () => {
		const everyValue = Buffer.alloc(4096, 0).map((_, i) => i % 256);
		const twoValues = Buffer.alloc(4096, 0).map((_, i) => (i % 2 ? 7 : 200));
		expect(sampleEntropy(everyValue)).toBeCloseTo(8, 10);
		expect(sampleEntropy(Buffer.alloc(5000, 9))).toBe(0);
		expect(sampleEntropy(twoValues)).toBeCloseTo(1, 10);
		// The counts of one call do not leak into the next.
		expect(sampleEntropy(everyValue)).toBeCloseTo(8, 10);
	});

	it("compresses a large, clearly compressible blob whole", () => {
		const text = Buffer.from("the ledger of the quarter, line by line, account 4711\n".repeat(20_000));
		const packed = compress(text, true);
		expect(packed[0]).toBe(CODEC.brotli);
		expect(packed.length).toBeLessThan(text.length / 10);
		expect(decompress(packed, "t").equals(text)).toBe(true);
	});

	it("gives the same bytes whatever length the caller expects, right or wrong", () => {
		const line = "the ledger of the quarter, line by line, account 4711\n";
		for (const size of [200, 4095, 4096, 16_384, 16_385, 300_000]) {
			const text = Buffer.from(line.repeat(Math.ceil(size / line.length)).slice(0, size));
			const packed = compress(text, true);
			expect(packed[0]).toBe(CODEC.brotli);
			for (const expected of [size, size - 1, 0, size * 3]) {
				expect(decompress(packed, "t", expected).equals(text)).toBe(true);
			}
		}
	});

	it("still reads raw DEFLATE (codec 1)", async () => {
		const { deflateRawSync } = await import("node:zlib");
		const text = Buffer.from("older writers used deflate ".repeat(100));
		expect(decompress(Buffer.concat([Buffer.of(CODEC.deflate), deflateRawSync(text)]), "d").equals(text)).toBe(true);
	});

	it("stores everything as is when compression is off, and rejects an unknown codec", async () => {
		const text = Buffer.from("a".repeat(10_000));
		expect(compress(text, false)[0]).toBe(CODEC.stored);
		expect(() => decompress(Buffer.from([9, 1, 2]), "blob x")).toThrow("blob x: unknown compression codec 9");
	});
});
