import { describe, expect, it } from "vitest";
import { BoundedTasks, concurrencyLimit, Semaphore } from "./semaphore.js";

/** Lets every promise that can settle now settle. */
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A promise settled from outside, to hold a task open until the test lets it end. */
function gate<T = void>() {
	let open!: (value: T) => void;
	let fail!: (reason: unknown) => void;
	const promise = new Promise<T>((resolve, reject) => {
		open = resolve;
		fail = reject;
	});
	return { promise, open, fail };
}

/** Starts `acquire(weight)` and reports whether it has been granted. */
function request(semaphore: Semaphore, weight: number, granted: number[], label = weight) {
	return semaphore.acquire(weight).then(() => {
		granted.push(label);
	});
}

describe("Semaphore", () => {
	it("lets requests of several weights in together while they fit, and no more", async () => {
		const semaphore = new Semaphore(10);
		const granted: number[] = [];
		void request(semaphore, 4, granted);
		void request(semaphore, 5, granted);
		void request(semaphore, 2, granted);
		await tick();
		expect(granted).toEqual([4, 5]);
		expect(semaphore.used).toBe(9);
		semaphore.release(4);
		await tick();
		expect(granted).toEqual([4, 5, 2]);
		expect(semaphore.used).toBe(7);
	});

	it("never lets concurrent holders past the capacity, whatever order they give back in", async () => {
		const semaphore = new Semaphore(64);
		let peak = 0;
		const worker = async (weight: number, rounds: number) => {
			for (let i = 0; i < rounds; i++) {
				await semaphore.acquire(weight);
				peak = Math.max(peak, semaphore.used);
				await tick();
				semaphore.release(weight);
			}
		};
		await Promise.all([worker(16, 20), worker(24, 20), worker(8, 20), worker(32, 20), worker(5, 20)]);
		expect(peak).toBeLessThanOrEqual(64);
		expect(peak).toBeGreaterThan(32);
		expect(semaphore.used).toBe(0);
	});

	it("clamps a request larger than the capacity: it waits for everything to be given back, then runs alone", async () => {
		const semaphore = new Semaphore(10);
		const granted: number[] = [];
		await semaphore.acquire(3);
		void request(semaphore, 50, granted);
		await tick();
		expect(granted).toEqual([]);
		semaphore.release(3);
		await tick();
		expect(granted).toEqual([50]);
		// Alone: even the smallest request waits until the oversize one is given back.
		void request(semaphore, 1, granted);
		await tick();
		expect(granted).toEqual([50]);
		semaphore.release(50);
		await tick();
		expect(granted).toEqual([50, 1]);
		expect(semaphore.used).toBe(1);
	});

	it("serves requests in the order made: small ones that would fit wait behind a large one", async () => {
		const semaphore = new Semaphore(10);
		const granted: number[] = [];
		await semaphore.acquire(6);
		void request(semaphore, 8, granted, 1);
		void request(semaphore, 2, granted, 2);
		void request(semaphore, 2, granted, 3);
		await tick();
		// 2 + 6 fits, but the request for 8 came first.
		expect(granted).toEqual([]);
		semaphore.release(6);
		await tick();
		expect(granted).toEqual([1, 2]);
		semaphore.release(8);
		await tick();
		expect(granted).toEqual([1, 2, 3]);
	});

	it("tryAcquire holds what fits now and nothing else, and never goes ahead of a request waiting", async () => {
		const semaphore = new Semaphore(10);
		expect(semaphore.tryAcquire(6)).toBe(true);
		expect(semaphore.tryAcquire(5)).toBe(false);
		expect(semaphore.used).toBe(6);
		const granted: number[] = [];
		void request(semaphore, 8, granted, 1);
		await tick();
		// 2 + 6 fits, but the request for 8 waits first.
		expect(semaphore.tryAcquire(2)).toBe(false);
		expect(semaphore.used).toBe(6);
		semaphore.release(6);
		await tick();
		expect(granted).toEqual([1]);
		expect(semaphore.tryAcquire(2)).toBe(true);
		expect(semaphore.used).toBe(10);
		expect(() => semaphore.tryAcquire(0)).toThrow(RangeError);
	});

	it("does not starve a large request under a steady stream of small ones", async () => {
		const semaphore = new Semaphore(4);
		const granted: number[] = [];
		let largeGranted = false;
		const small = async (label: number) => {
			await semaphore.acquire(1);
			granted.push(label);
			await tick();
			semaphore.release(1);
		};
		const stream: Promise<void>[] = [small(1), small(2), small(3)];
		const large = semaphore.acquire(4).then(() => {
			largeGranted = true;
			granted.push(100);
			semaphore.release(4);
		});
		// Small requests keep coming after the large one; each would fit on its own.
		for (let label = 4; label <= 12; label++) stream.push(small(label));
		await Promise.all([...stream, large]);
		expect(largeGranted).toBe(true);
		expect(granted.indexOf(100)).toBe(3);
	});

	it("keeps the order of thousands of waiters, served one at a time", async () => {
		const semaphore = new Semaphore(1);
		const granted: number[] = [];
		await semaphore.acquire();
		for (let i = 0; i < 3000; i++) void request(semaphore, 1, granted, i);
		for (let i = 0; i < 3000; i++) {
			semaphore.release();
			await Promise.resolve();
		}
		await tick();
		expect(granted).toEqual(Array.from({ length: 3000 }, (_, i) => i));
		expect(semaphore.used).toBe(1);
	});

	it("counts held weight at once, past the capacity, and keeps requests waiting until it is given back", async () => {
		const semaphore = new Semaphore(100);
		const granted: number[] = [];
		semaphore.hold(90);
		semaphore.hold(30);
		expect(semaphore.used).toBe(120);
		void request(semaphore, 20, granted);
		await tick();
		expect(granted).toEqual([]);
		semaphore.release(30);
		await tick();
		expect(granted).toEqual([]);
		semaphore.release(90);
		await tick();
		expect(granted).toEqual([20]);
		expect(semaphore.used).toBe(20);
	});

	it("gives the weight back when the task run under it throws", async () => {
		const semaphore = new Semaphore(3);
		await expect(
			semaphore.run(async () => {
				throw new Error("boom");
			}, 3),
		).rejects.toThrow("boom");
		expect(semaphore.used).toBe(0);
		let ran = false;
		void semaphore.run(async () => {
			ran = true;
		}, 3);
		await tick();
		expect(ran).toBe(true);
	});

	it("refuses a capacity or weight that is not positive", () => {
		expect(() => new Semaphore(0)).toThrow(RangeError);
		const semaphore = new Semaphore(2);
		return expect(semaphore.acquire(0)).rejects.toThrow(RangeError);
	});
});

describe("concurrencyLimit", () => {
	it("runs at most that many tasks at once and starts them in the order given", async () => {
		const limit = concurrencyLimit(2);
		const gates = [gate(), gate(), gate(), gate()];
		const started: number[] = [];
		const runs = gates.map((g, i) =>
			limit(async () => {
				started.push(i);
				await g.promise;
				return i;
			}),
		);
		await tick();
		expect(started).toEqual([0, 1]);
		gates[1]?.open();
		await tick();
		expect(started).toEqual([0, 1, 2]);
		gates[0]?.open();
		gates[2]?.open();
		gates[3]?.open();
		expect(await Promise.all(runs)).toEqual([0, 1, 2, 3]);
	});

	it("frees the place of a task that fails, and passes its error to the caller", async () => {
		const limit = concurrencyLimit(1);
		const failed = limit(async () => {
			throw new Error("first failed");
		});
		let nextRan = false;
		void limit(async () => {
			nextRan = true;
		});
		await expect(failed).rejects.toThrow("first failed");
		await tick();
		expect(nextRan).toBe(true);
	});
});

describe("BoundedTasks", () => {
	it("waits for room before starting another task", async () => {
		const tasks = new BoundedTasks(2);
		const gates = [gate(), gate(), gate()];
		let started = 0;
		const start = (i: number) => () => {
			started++;
			return gates[i]?.promise as Promise<void>;
		};
		await tasks.add(start(0));
		await tasks.add(start(1));
		let thirdAdded = false;
		const third = tasks.add(start(2)).then(() => (thirdAdded = true));
		await tick();
		expect(started).toBe(2);
		expect(thirdAdded).toBe(false);
		gates[0]?.open();
		await third;
		expect(started).toBe(3);
		gates[1]?.open();
		gates[2]?.open();
		await tasks.drain();
	});

	it("stops new work after the first failure and reports that failure, not a later one", async () => {
		const tasks = new BoundedTasks(2);
		const first = gate();
		const second = gate();
		const { done } = await tasks.add(() => first.promise);
		await tasks.add(() => second.promise);
		first.fail(new Error("first failure"));
		await expect(done).rejects.toThrow("first failure");
		second.fail(new Error("second failure"));
		let startedAfter = false;
		await expect(
			tasks.add(async () => {
				startedAfter = true;
			}),
		).rejects.toThrow("first failure");
		expect(startedAfter).toBe(false);
		await expect(tasks.drain()).rejects.toThrow("first failure");
		await expect(tasks.drain()).rejects.toThrow("first failure");
	});

	it("lets every task under way finish before drain reports a failure", async () => {
		const tasks = new BoundedTasks(2);
		const failing = gate();
		const slow = gate();
		let slowFinished = false;
		await tasks.add(() => failing.promise);
		await tasks.add(async () => {
			await slow.promise;
			slowFinished = true;
		});
		failing.fail(new Error("failed first"));
		let drainEnded = false;
		const drained = tasks.drain().catch((error: Error) => {
			drainEnded = true;
			return error.message;
		});
		await tick();
		expect(drainEnded).toBe(false);
		slow.open();
		expect(await drained).toBe("failed first");
		expect(slowFinished).toBe(true);
	});
});
