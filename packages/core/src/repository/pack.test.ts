import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RepositoryKeys } from "./crypto.js";
import { BLOB_TYPE } from "./format.js";
import { PackBuilder, readPackHeader } from "./pack.js";
import { digestFile, PackFile } from "./pack-file.js";
import { StagingBuffers } from "./staging-buffers.js";

const keys = RepositoryKeys.fromMaster(Buffer.alloc(32, 7));

let dir: string;
beforeEach(async () => {
	dir = await mkdtemp(join(tmpdir(), "pack-test-"));
});
afterEach(async () => {
	await rm(dir, { recursive: true, force: true });
});

async function newBuilder(capacity: number, staging = new StagingBuffers(1 << 20)): Promise<PackBuilder> {
	return new PackBuilder(PackFile.create(dir), staging, capacity);
}

/** A staging buffer for a region of `size` bytes. */
const stagingFor = (size: number) => new StagingBuffers(1 << 20).take(size);

/** What a worker does with a reservation: writes blobs back to back from the start of its staging buffer. */
function sealInto(builder: PackBuilder, offset: number, blobs: Buffer[]): void {
	const staged = builder.staged(offset);
	let at = 0;
	for (const blob of blobs) {
		staged.set(blob, at);
		at += blob.length;
	}
}

/** Finishes the pack and reads back the file it was written to. */
async function finished(builder: PackBuilder) {
	const done = await builder.finish(keys, async (path, size) => digestFile(path, size));
	const bytes = await readFile(builder.file.path);
	await builder.file.remove();
	return { ...done, bytes };
}

const blob = (fill: number, length: number) => Buffer.alloc(length, fill);
const ref = (id: string, length: number) => ({ type: "data" as const, id, length, rawLength: length * 2 });

/** The pack format written out by hand in memory (FORMAT.md): blobs, sealed header, its length. */
function packInMemory(blobs: { id: string; bytes: Buffer; rawLength: number }[]): { header: Buffer; body: Buffer } {
	const header = Buffer.alloc(blobs.length * 45);
	let offset = 0;
	blobs.forEach((b, i) => {
		header.writeUInt8(BLOB_TYPE.data, i * 45);
		Buffer.from(b.id, "hex").copy(header, i * 45 + 1);
		header.writeUInt32LE(offset, i * 45 + 33);
		header.writeUInt32LE(b.bytes.length, i * 45 + 37);
		header.writeUInt32LE(b.rawLength, i * 45 + 41);
		offset += b.bytes.length;
	});
	return { header, body: Buffer.concat(blobs.map((b) => b.bytes)) };
}

describe("PackBuilder", () => {
	it("keeps blobs in reservation order with no gap, whatever order the regions are sealed in", async () => {
		const builder = await newBuilder(1000);
		const first = builder.reserve(300, await stagingFor(300)) as number;
		const second = builder.reserve(300, await stagingFor(300)) as number;
		expect(second).toBe(300);
		// The second region is sealed first and shorter than reserved; the first waits for nothing.
		sealInto(builder, second, [blob(2, 40), blob(3, 60)]);
		builder.commit(second, [ref("b".repeat(64), 40), ref("c".repeat(64), 60)]);
		expect(builder.count).toBe(0);
		const drained = builder.drained();
		sealInto(builder, first, [blob(1, 100)]);
		builder.commit(first, [ref("a".repeat(64), 100)]);
		await drained;
		expect(builder.reservations).toBe(0);
		expect(builder.size).toBe(200);
		const { bytes, blobs, size, hash } = await finished(builder);
		expect(bytes.length).toBe(size);
		expect(hash).toBe(createHash("sha256").update(bytes).digest("hex"));
		expect(blobs.map((b) => [b.id[0], b.offset, b.length])).toEqual([
			["a", 0, 100],
			["b", 100, 40],
			["c", 140, 60],
		]);
		for (const [i, fill] of [1, 2, 3].entries()) {
			const { offset, length } = blobs[i] as { offset: number; length: number };
			expect(bytes.subarray(offset, offset + length).every((byte) => byte === fill)).toBe(true);
		}
		expect((await readPackHeader(keys, bytes, "pack")).map((b) => b.offset)).toEqual([0, 100, 140]);
	});

	it("refuses a reservation past its capacity and a finish or a copied blob while regions are sealed into", async () => {
		const builder = await newBuilder(500);
		const offset = builder.reserve(400, await stagingFor(400)) as number;
		expect(builder.reserve(101, await stagingFor(101))).toBeUndefined();
		expect(builder.room).toBe(100);
		expect(() => builder.add("data", "d".repeat(64), blob(4, 10), 10)).toThrow(/while workers seal/);
		await expect(builder.finish(keys, async () => ({ sha256: "hash" }))).rejects.toThrow(/while workers seal/);
		// A failed seal commits nothing: the region is given back.
		builder.commit(offset, []);
		expect(builder.size).toBe(0);
		expect(builder.room).toBe(500);
		await builder.file.remove();
	});

	it("leaves out a blob sealed into a region and then dropped, with no hole where it was", async () => {
		const builder = await newBuilder(1000);
		const offset = builder.reserve(400, await stagingFor(400)) as number;
		// Three blobs sealed back to back; the middle one turned out stored already.
		sealInto(builder, offset, [blob(1, 50), blob(2, 70), blob(3, 30)]);
		builder.commit(offset, [
			{ ...ref("a".repeat(64), 50), at: 0 },
			{ ...ref("c".repeat(64), 30), at: 120 },
		]);
		expect(builder.size).toBe(80);
		const { bytes, blobs } = await finished(builder);
		expect(blobs.map((b) => [b.id[0], b.offset, b.length])).toEqual([
			["a", 0, 50],
			["c", 50, 30],
		]);
		expect(bytes.subarray(0, 50).every((byte) => byte === 1)).toBe(true);
		expect(bytes.subarray(50, 80).every((byte) => byte === 3)).toBe(true);
		expect((await readPackHeader(keys, bytes, "pack")).map((b) => [b.offset, b.length])).toEqual([
			[0, 50],
			[50, 30],
		]);
	});

	it("writes through its file the very bytes of a pack built in memory, staging buffers reused", async () => {
		const staging = new StagingBuffers(1 << 20);
		const builder = await newBuilder(1 << 20, staging);
		const stagingFor = (size: number) => staging.take(size);
		const sealed = [0, 1, 2, 3, 4].map((i) => ({
			id: createHash("sha256").update(`blob ${i}`).digest("hex"),
			bytes: createHash("sha512")
				.update(`sealed ${i}`)
				.digest()
				.subarray(0, 20 + i * 7),
			rawLength: 100 + i,
		}));
		// Two blobs added whole, three sealed into reserved regions committed out of order.
		builder.add("data", sealed[0]?.id as string, sealed[0]?.bytes as Buffer, sealed[0]?.rawLength as number);
		const one = builder.reserve(200, await stagingFor(200)) as number;
		const two = builder.reserve(200, await stagingFor(200)) as number;
		sealInto(builder, two, [sealed[3]?.bytes as Buffer]);
		builder.commit(two, [{ type: "data", id: sealed[3]?.id as string, length: 41, rawLength: 103 }]);
		sealInto(builder, one, [sealed[1]?.bytes as Buffer, sealed[2]?.bytes as Buffer]);
		builder.commit(one, [
			{ type: "data", id: sealed[1]?.id as string, length: 27, rawLength: 101 },
			{ type: "data", id: sealed[2]?.id as string, length: 34, rawLength: 102 },
		]);
		builder.add("data", sealed[4]?.id as string, sealed[4]?.bytes as Buffer, sealed[4]?.rawLength as number);
		const { bytes } = await finished(builder);
		const expected = packInMemory(sealed);
		expect(bytes.subarray(0, expected.body.length).equals(expected.body)).toBe(true);
		const headerLength = bytes.readUInt32LE(bytes.length - 4);
		expect(bytes.length).toBe(expected.body.length + headerLength + 4);
		const header = keys.open(bytes.subarray(expected.body.length, bytes.length - 4), "header");
		expect(header.equals(expected.header)).toBe(true);
		// Both regions' buffers came back once written, kept for the next batches.
		expect(staging.inUse).toBe(0);
		expect(staging.freeBytes).toBeGreaterThanOrEqual(400);
		expect(await readdir(dir)).toEqual([]);
	});

	it("digests a pack file in one read: its key's SHA-256, and its MD5 only when asked", async () => {
		const path = join(dir, "digest-me");
		const bytes = createHash("sha512").update("pack").digest().subarray(0, 50);
		const body = Buffer.concat(Array.from({ length: 20_000 }, () => bytes));
		await writeFile(path, body);
		expect(digestFile(path, body.length)).toEqual({ sha256: createHash("sha256").update(body).digest("hex") });
		expect(digestFile(path, body.length, true)).toEqual({
			sha256: createHash("sha256").update(body).digest("hex"),
			md5: createHash("md5").update(body).digest("base64"),
		});
		expect(() => digestFile(path, body.length + 1, true)).toThrow(/ends after/);
	});

	it("says in one line which pack file could not be written, and why", async () => {
		// The temp folder's place is taken by a file.
		await writeFile(join(dir, "taken"), "a file");
		const builder = new PackBuilder(PackFile.create(join(dir, "taken")), new StagingBuffers(1 << 20), 1000);
		builder.add("data", "a".repeat(64), blob(1, 10), 20);
		const failure = builder.finish(keys, async (path, size) => digestFile(path, size));
		await expect(failure).rejects.toThrow(
			new RegExp(`^${join(dir, "taken")}/.*: cannot write a pack being assembled \\(the folder is set by TMPDIR\\): ENOTDIR`),
		);
		await builder.file.remove();
	});
});
