import { describe, expect, it } from "vitest";
import { Semaphore } from "../../host/semaphore.js";
import { SlabPool } from "./slab-pool.js";

describe("SlabPool", () => {
	it("reuses a freed buffer instead of allocating another, and counts it against the budget while in use", async () => {
		const budget = new Semaphore(1 << 20);
		const pool = new SlabPool(budget, 1 << 20);
		const first = await pool.get(100_000);
		expect(budget.used).toBe(first.bytes.length);
		first.unref();
		expect(budget.used).toBe(0);
		const second = await pool.get(100_000);
		expect(second).toBe(first);
		expect(budget.used).toBe(second.bytes.length);
	});

	it("keeps a reader waiting while the budget is full, and lets it on once a slab is given back", async () => {
		const budget = new Semaphore(256 * 1024);
		const pool = new SlabPool(budget, 0);
		const held = await pool.get(200_000);
		let second: unknown;
		const waiting = pool.get(100_000).then((slab) => (second = slab));
		await new Promise<void>((resolve) => setImmediate(resolve));
		expect(second).toBeUndefined();
		held.unref();
		await waiting;
		expect(budget.used).toBe(128 * 1024);
	});
});
