import { randomBytes } from "node:crypto";
import { brotliCompressSync, brotliDecompressSync, constants, inflateRawSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import * as zstd from "zstd-napi";
import { CODEC, compress, decompress, encodeBody, SMALL_BODY, sampleEntropy } from "./compression.js";

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
		// A sample of 1 KiB: random bytes measure 7.74 to 7.9 bits a byte.
		expect(sampleEntropy(random)).toBeGreaterThan(7.7);
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
		// A large blob is sampled in runs: data that repeats every 4 bytes does not look like a single byte value.
		const everyValueLarge = Buffer.alloc(1 << 20, 0).map((_, i) => i % 256);
		expect(sampleEntropy(everyValueLarge)).toBeCloseTo(8, 10);
		const fourValues = Buffer.alloc(1 << 20, 0).map((_, i) => i % 4);
		expect(sampleEntropy(fourValues)).toBeCloseTo(2, 10);
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
			expect(packed[0]).toBe(size < SMALL_BODY ? CODEC.deflate : CODEC.brotli);
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

describe("compression by size and kind", () => {
	const words = "backup lock retention snapshot restore object bucket immutable chunk pack index tree".split(" ");
	/** Text of `size` bytes from a few words in a fixed pseudo-random order: compressible, not repetitive. */
	function wordText(size: number, seed = 7): Buffer {
		let x = seed;
		let text = "";
		while (text.length < size) {
			x = (x * 1103515245 + 12345) >>> 0;
			text += `${words[(x >>> 16) % words.length]} `;
		}
		return Buffer.from(text.slice(0, size));
	}
	/** A tree's JSON: file nodes with hex blob IDs, times and sizes. */
	function treeJson(files: number): Buffer {
		const nodes = Array.from({ length: files }, (_, i) => ({
			name: `f${i * 37}.txt`,
			type: "file",
			mode: 33188,
			uid: 1000,
			gid: 1000,
			size: 1000 + ((i * 7919) % 15000),
			mtime: String(1795860794775734786n + BigInt(i * 104729)),
			ctime: String(1795860794775734786n + BigInt(i * 104729)),
			inode: String(8023427 + i * 3),
			device: "65024",
			content: [randomBytes(32).toString("hex")],
		}));
		return Buffer.from(JSON.stringify({ nodes }));
	}

	it("stores file content as zstd frames that any zstd decoder reads, at every size", () => {
		for (const size of [100, 700, 1500, 2048, 5000, SMALL_BODY - 1, SMALL_BODY, 40_000, 3_000_000]) {
			const text = wordText(size);
			const { codec, body } = encodeBody(text, true);
			expect(codec).toBe(CODEC.zstd);
			// A frame's header weighs on the tiniest.
			expect(body.length).toBeLessThan(text.length * (size < 1000 ? 0.95 : 0.5));
			expect(zstd.decompress(Buffer.from(body)).equals(text)).toBe(true);
			expect(decompress(Buffer.concat([Buffer.of(codec), body]), "blob", size).equals(text)).toBe(true);
		}
		// A frame another writer made, at another level, reads the same.
		const text = wordText(50_000, 3);
		const other = zstd.compress(text, { compressionLevel: 19 });
		expect(decompress(Buffer.concat([Buffer.of(CODEC.zstd), other]), "other").equals(text)).toBe(true);
	});

	it("keeps snapshots, index and config objects in DEFLATE under 16 KiB and Brotli from there: reading them needs no zstd", () => {
		for (const size of [200, SMALL_BODY - 1, SMALL_BODY, 40_000]) {
			const text = wordText(size);
			const packed = compress(text, true);
			expect(packed[0]).toBe(size < SMALL_BODY ? CODEC.deflate : CODEC.brotli);
			const body = packed.subarray(1);
			expect((size < SMALL_BODY ? inflateRawSync(body) : brotliDecompressSync(body)).equals(text)).toBe(true);
			expect(encodeBody(text, true, "object").codec).toBe(packed[0]);
		}
		// Still smaller than Brotli at quality 1 makes them, under 16 KiB.
		const small = wordText(5000);
		expect(compress(small, true).length - 1).toBeLessThan(
			brotliCompressSync(small, { params: { [constants.BROTLI_PARAM_QUALITY]: 1 } }).length,
		);
	});

	it("reads a damaged zstd frame as corrupt, not as data", () => {
		const { body } = encodeBody(wordText(5000), true);
		const damaged = Buffer.concat([Buffer.of(CODEC.zstd), body.subarray(0, body.length - 7)]);
		expect(() => decompress(damaged, "blob d")).toThrow("blob d: cannot decompress");
	});

	it("reads a zstd body into exactly the length the index gives, and never sizes memory by what the body declares", () => {
		const text = wordText(20_000);
		const { body } = encodeBody(text, true);
		const framed = Buffer.concat([Buffer.of(CODEC.zstd), body]);
		expect(decompress(framed, "blob", 20_000).equals(text)).toBe(true);
		// An index that says otherwise: the blob is not what it recorded.
		expect(() => decompress(framed, "blob s", 19_999)).toThrow("blob s: cannot decompress");
		expect(() => decompress(framed, "blob l", 20_001)).toThrow("blob l: holds 20000 bytes, not 20001");
		// A second frame after the first: more than the index gives, whatever the first declares.
		const twice = Buffer.concat([framed, body]);
		expect(() => decompress(twice, "blob t", 20_000)).toThrow("blob t: cannot decompress");

		// A header that declares 1 TiB (Frame_Content_Size rewritten): without a length from the index, refused as it is read.
		const huge = Buffer.from(zstd.compress(Buffer.alloc(70_000, 7)));
		const descriptor = huge[4] as number;
		expect(descriptor >> 6).toBe(2); // four bytes of content size, after the window byte
		const sizeAt = 4 + 1 + ((descriptor & 0x20) === 0 ? 1 : 0);
		const bigger = Buffer.from(huge);
		bigger[4] = (descriptor & 0x3f) | (3 << 6);
		const declared = Buffer.alloc(8);
		declared.writeBigUInt64LE(2n ** 40n);
		const forged = Buffer.concat([bigger.subarray(0, sizeAt), declared, huge.subarray(sizeAt + 4)]);
		expect(() => decompress(Buffer.concat([Buffer.of(CODEC.zstd), forged]), "blob h")).toThrow(
			"blob h: zstd frame declares 1099511627776 size",
		);
		// An index length no blob has (a bug's) allocates nothing.
		expect(() => decompress(framed, "blob g", 2 ** 32)).toThrow(
			"blob g: the index gives 4294967296 bytes, more than a blob holds",
		);
		// With the index's length it is read into that many bytes, and its 70,000 are too many.
		expect(() => decompress(Buffer.concat([Buffer.of(CODEC.zstd), forged]), "blob i", 100)).toThrow("blob i: cannot decompress");
	});

	it("compresses a tree harder than data of the same bytes, in Brotli that any decoder reads", () => {
		for (const files of [3, 60]) {
			const tree = treeJson(files);
			const asTree = encodeBody(tree, true, "tree");
			expect(asTree.codec).toBe(CODEC.brotli);
			expect(brotliDecompressSync(asTree.body).equals(tree)).toBe(true);
			const quality1 = brotliCompressSync(tree, { params: { [constants.BROTLI_PARAM_QUALITY]: 1 } });
			expect(asTree.body.length).toBeLessThan(quality1.length);
		}
	});

	it("stores small random data as is, tree or data, and tiny data always", () => {
		for (const size of [512, 900, 1500]) {
			const random = randomBytes(size);
			expect(encodeBody(random, true).codec).toBe(CODEC.stored);
			expect(encodeBody(random, true, "tree").codec).toBe(CODEC.stored);
		}
		expect(encodeBody(wordText(63), true).codec).toBe(CODEC.stored);
		expect(encodeBody(wordText(1000), false, "tree").codec).toBe(CODEC.stored);
	});
});
