import { describe, expect, it } from "vitest";
import { ByteBudget, SlabPool } from "./byte-budget.js";

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("ByteBudget", () => {
	it("keeps takers waiting while bytes held by uploads fill the cap, and lets them on when given back", async () => {
		const budget = new ByteBudget(100);
		budget.hold(90);
		let taken = false;
		const take = budget.take(20).then(() => (taken = true));
		await tick();
		expect(taken).toBe(false);
		budget.give(90);
		await take;
		expect(budget.used).toBe(20);
	});

	it("never lets concurrent takers past the cap, whatever order they are given back in", async () => {
		const budget = new ByteBudget(64);
		let peak = 0;
		const worker = async (bytes: number, rounds: number) => {
			for (let i = 0; i < rounds; i++) {
				await budget.take(bytes);
				peak = Math.max(peak, budget.used);
				await tick();
				budget.give(bytes);
			}
		};
		await Promise.all([worker(16, 20), worker(24, 20), worker(8, 20), worker(32, 20), worker(5, 20)]);
		expect(peak).toBeLessThanOrEqual(64);
		expect(peak).toBeGreaterThan(32);
		expect(budget.used).toBe(0);
	});

	it("lets one request larger than the cap through alone, so it never waits forever", async () => {
		const budget = new ByteBudget(10);
		await budget.take(50);
		expect(budget.used).toBe(50);
	});
});

describe("SlabPool", () => {
	it("reuses a freed buffer instead of allocating another, and counts it against the budget while in use", async () => {
		const budget = new ByteBudget(1 << 20);
		const pool = new SlabPool(budget, 1 << 20);
		const first = await pool.get(100_000);
		expect(budget.used).toBe(first.bytes.length);
		first.unref();
		expect(budget.used).toBe(0);
		const second = await pool.get(100_000);
		expect(second).toBe(first);
		expect(budget.used).toBe(second.bytes.length);
	});
});
