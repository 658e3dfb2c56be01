import { describe, expect, it } from "vitest";
import { PackBuffers } from "./pack-buffers.js";

/** Whether `promise` has settled once pending callbacks have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
	let done = false;
	void promise.then(() => {
		done = true;
	});
	await new Promise((resolve) => setImmediate(resolve));
	return done;
}

describe("PackBuffers", () => {
	it("makes a new pack wait at the cap for an uploaded pack's buffer, and hands that very buffer on", async () => {
		const buffers = new PackBuffers(1024, 2);
		const first = await buffers.take();
		await buffers.take();
		buffers.closing();
		const third = buffers.take();
		expect(await settled(third)).toBe(false);
		buffers.give(first);
		expect(await third).toBe(first);
		expect(buffers.inUse).toBe(2);
	});

	it("takes one more when every buffer belongs to an open pack, as none would come back", async () => {
		const buffers = new PackBuffers(1024, 2);
		await buffers.take();
		await buffers.take();
		const third = buffers.take();
		expect(await settled(third)).toBe(true);
		expect((await third).length).toBe(1024);
		expect(buffers.inUse).toBe(3);
	});

	it("frees the place of a pack whose upload failed: the next pack gets a fresh buffer", async () => {
		const buffers = new PackBuffers(1024, 1);
		const failed = await buffers.take();
		buffers.closing();
		const next = buffers.take();
		expect(await settled(next)).toBe(false);
		buffers.drop();
		const fresh = await next;
		expect(fresh).not.toBe(failed);
		expect(fresh.length).toBe(1024);
	});

	it("lets a buffer grown past the capacity go instead of reusing it", async () => {
		const buffers = new PackBuffers(1024, 1);
		await buffers.take();
		buffers.closing();
		const grown = Buffer.alloc(2048);
		buffers.give(grown);
		const next = await buffers.take();
		expect(next).not.toBe(grown);
		expect(next.length).toBe(1024);
	});
});
