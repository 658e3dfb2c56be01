import { randomBytes } from "node:crypto";
import { brotliCompressSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { decompress } from "./compression.js";
import { gatherForTransfer } from "./plaintext-transfer.js";

describe("plaintexts on their way back from a worker", () => {
	it("moves a large plaintext with the buffer it was opened into, one byte longer, instead of copying it", () => {
		const plain = randomBytes(300 * 1024);
		const framed = Buffer.concat([Buffer.of(2), brotliCompressSync(plain)]);
		const opened = decompress(framed, "test blob", plain.length);
		expect(opened.buffer.byteLength).toBeGreaterThan(opened.byteLength);
		const { blobs, transfer } = gatherForTransfer([opened]);
		expect(transfer).toEqual([opened.buffer]);
		expect(blobs[0]).toBe(opened);
		expect(Buffer.from(blobs[0] as Uint8Array).equals(plain)).toBe(true);
	});

	it("moves a stored blob's plaintext behind its codec byte", () => {
		const body = Buffer.concat([Buffer.of(0), randomBytes(128 * 1024)]);
		const opened = decompress(body, "test blob");
		const { transfer } = gatherForTransfer([opened]);
		expect(transfer).toEqual([body.buffer]);
	});

	it("copies small plaintexts, and large ones that share a buffer, into one buffer", () => {
		const shared = randomBytes(512 * 1024);
		const halves = [shared.subarray(0, 256 * 1024), shared.subarray(256 * 1024)];
		const small = Buffer.from("a small blob");
		const { blobs, transfer } = gatherForTransfer([...halves, small]);
		expect(transfer).toHaveLength(1);
		expect(transfer[0]).not.toBe(shared.buffer);
		expect(blobs.map((blob) => Buffer.from(blob as Uint8Array))).toEqual([...halves, small]);
		for (const blob of blobs) expect((blob as Uint8Array).buffer).toBe(transfer[0]);
	});

	it("leaves out what is not asked back", () => {
		const kept = randomBytes(100);
		const { blobs, transfer } = gatherForTransfer([randomBytes(200 * 1024), kept], Uint8Array.of(0, 1));
		expect(blobs[0]).toBeUndefined();
		expect(Buffer.from(blobs[1] as Uint8Array).equals(kept)).toBe(true);
		expect((transfer[0] as ArrayBuffer).byteLength).toBe(100);
	});
});
