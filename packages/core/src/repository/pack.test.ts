import { describe, expect, it } from "vitest";
import { RepositoryKeys } from "./crypto.js";
import { PackBuilder, readPackHeader, sharedBuffer } from "./pack.js";

const keys = RepositoryKeys.fromMaster(Buffer.alloc(32, 7));

/** What a worker does with a reservation: writes blobs back to back from its start. */
function sealInto(builder: PackBuilder, offset: number, blobs: Buffer[]): void {
	let at = offset;
	for (const blob of blobs) {
		builder.buffer.set(blob, at);
		at += blob.length;
	}
}

const blob = (fill: number, length: number) => Buffer.alloc(length, fill);
const ref = (id: string, length: number) => ({ type: "data" as const, id, length, rawLength: length * 2 });

describe("PackBuilder reservations", () => {
	it("keeps blobs in reservation order with no gap, whatever order the regions are sealed in", async () => {
		const builder = new PackBuilder(sharedBuffer(1000));
		const first = builder.reserve(300) as number;
		const second = builder.reserve(300) as number;
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
		const { bytes, blobs } = await builder.finish(keys, async () => "hash");
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

	it("refuses a reservation past its buffer and a finish or a copied blob while regions are sealed into", async () => {
		const builder = new PackBuilder(sharedBuffer(500));
		const offset = builder.reserve(400) as number;
		expect(builder.reserve(101)).toBeUndefined();
		expect(builder.room).toBe(100);
		expect(() => builder.add("data", "d".repeat(64), blob(4, 10), 10)).toThrow(/while workers seal/);
		await expect(builder.finish(keys, async () => "hash")).rejects.toThrow(/while workers seal/);
		// A failed seal commits nothing: the region is given back.
		builder.commit(offset, []);
		expect(builder.size).toBe(0);
		expect(builder.room).toBe(500);
	});

	it("leaves out a blob sealed into a region and then dropped, with no hole where it was", async () => {
		const builder = new PackBuilder(sharedBuffer(1000));
		const offset = builder.reserve(400) as number;
		// Three blobs sealed back to back; the middle one turned out stored already.
		sealInto(builder, offset, [blob(1, 50), blob(2, 70), blob(3, 30)]);
		builder.commit(offset, [
			{ ...ref("a".repeat(64), 50), at: 0 },
			{ ...ref("c".repeat(64), 30), at: 120 },
		]);
		expect(builder.size).toBe(80);
		const { bytes, blobs } = await builder.finish(keys, async () => "hash");
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
});
