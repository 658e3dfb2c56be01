import { describe, expect, it } from "vitest";
import { PackSlots } from "./pack-slots.js";

/** Whether `promise` has settled once pending callbacks have run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
	let done = false;
	void promise.then(() => {
		done = true;
	});
	await new Promise((resolve) => setImmediate(resolve));
	return done;
}

describe("PackSlots", () => {
	it("makes a new pack wait at the cap until a closed pack is done with", async () => {
		const slots = new PackSlots(2);
		await slots.take();
		await slots.take();
		slots.closing();
		const third = slots.take();
		expect(await settled(third)).toBe(false);
		slots.release();
		await third;
		expect(slots.inUse).toBe(2);
	});

	it("takes one more when every place belongs to an open pack, as none would come back", async () => {
		const slots = new PackSlots(2);
		await slots.take();
		await slots.take();
		const third = slots.take();
		expect(await settled(third)).toBe(true);
		expect(slots.inUse).toBe(3);
	});
});
