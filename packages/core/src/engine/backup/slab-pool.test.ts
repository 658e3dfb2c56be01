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

	it("tryGet gives a slab only when the budget has room now, and never passes a reader already waiting", async () => {
		const budget = new Semaphore(256 * 1024);
		const pool = new SlabPool(budget, 512 * 1024);
		const held = await pool.get(100_000);
		const also = pool.tryGet(60_000);
		expect(also?.bytes.length).toBe(64 * 1024);
		expect(budget.used).toBe(192 * 1024);
		expect(pool.tryGet(100_000)).toBeUndefined();
		expect(budget.used).toBe(192 * 1024);
		also?.unref();
		let waited: unknown;
		const waiting = pool.get(200_000).then((slab) => (waited = slab));
		// 64 KiB would fit beside the 128 held, but the reader that waits for 256 came first.
		expect(pool.tryGet(60_000)).toBeUndefined();
		expect(budget.used).toBe(128 * 1024);
		held.unref();
		await waiting;
		expect((waited as { bytes: Buffer }).bytes.length).toBe(256 * 1024);
		expect(budget.used).toBe(256 * 1024);
	});

	it("serves a size it has no free slab of from a larger free one once the kept bytes are reached, instead of making another", async () => {
		const budget = new Semaphore(16 << 20);
		const pool = new SlabPool(budget, 8 << 20);
		const big = await pool.get(8 << 20);
		big.unref();
		const small = await pool.get(100_000);
		expect(small).toBe(big);
		expect(budget.used).toBe(8 << 20);
		expect(pool.liveBytes).toBe(8 << 20);
		small.unref();
		expect(budget.used).toBe(0);
	});

	it("takes a larger free slab at once when the budget has no room for the difference: waiting for more while holding some could wait forever", async () => {
		const budget = new Semaphore(8 << 20);
		const pool = new SlabPool(budget, 8 << 20);
		const big = await pool.get(8 << 20);
		big.unref();
		// Another stage (packs uploading) holds the rest of the budget.
		const elsewhere = (8 << 20) - (128 << 10);
		await budget.acquire(elsewhere);
		let served: unknown;
		void pool.get(100_000).then((slab) => {
			served = slab;
		});
		await new Promise((resolve) => setImmediate(resolve));
		expect(served).toBe(big);
		expect(budget.used).toBe(elsewhere + (8 << 20));
		big.unref();
		expect(budget.used).toBe(elsewhere);
	});

	it("never keeps more than its kept bytes alive across files of many sizes: free slabs are let go, smallest first, before a new one is made", async () => {
		const budget = new Semaphore(64 << 20);
		const pool = new SlabPool(budget, 4 << 20);
		let most = 0;
		for (const size of [100_000, 300_000, 1 << 20, 70_000, 2 << 20, 200_000, 4 << 20, 500_000, 3 << 20]) {
			const slab = await pool.get(size);
			expect(slab.bytes.length).toBeGreaterThanOrEqual(size);
			most = Math.max(most, pool.liveBytes);
			slab.unref();
		}
		expect(most).toBeLessThanOrEqual(4 << 20);
		expect(budget.used).toBe(0);
	});

	it("makes a slab past its kept bytes while every one is in use, and lets it go when given back", async () => {
		const budget = new Semaphore(1 << 20);
		const pool = new SlabPool(budget, 128 * 1024);
		const first = await pool.get(128 * 1024);
		const second = await pool.get(128 * 1024);
		expect(second).not.toBe(first);
		expect(pool.liveBytes).toBe(256 * 1024);
		second.unref();
		first.unref();
		expect(pool.liveBytes).toBe(128 * 1024);
	});
});
