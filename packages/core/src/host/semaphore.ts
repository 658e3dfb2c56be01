// Hand-written: p-limit has no weights, and async-mutex's Semaphore scans every weight from its free value down on each release, a cost in bytes for a byte budget.

type Waiter = { readonly weight: number; readonly grant: () => void };

/**
 * The core's one concurrency primitive: a weighted semaphore. A count limit takes weight 1
 * per task, a byte budget the task's bytes. Requests are served in the order they were made,
 * so a large one is not starved by a stream of small ones. A request larger than the whole
 * capacity is clamped to it: it runs alone once everything else is given back, instead of
 * waiting forever.
 */
export class Semaphore {
	#used = 0;
	/** Waiting requests, oldest first from `#head`: taken from the front without moving the rest. */
	#waiting: Waiter[] = [];
	#head = 0;

	constructor(readonly capacity: number) {
		if (!(capacity > 0)) throw new RangeError(`a semaphore needs a positive capacity, not ${capacity}`);
	}

	/** Weight held now (an oversize request counts as the whole capacity). */
	get used(): number {
		return this.#used;
	}

	/** Waits until `weight` fits behind every earlier request, then holds it until `release`. */
	acquire(weight = 1): Promise<void> {
		try {
			if (this.tryAcquire(weight)) return Promise.resolve();
		} catch (error) {
			return Promise.reject(error);
		}
		return new Promise((grant) => this.#waiting.push({ weight: this.#clamp(weight), grant }));
	}

	/** Holds `weight` when it fits now, behind no earlier request: false (nothing held) when it would wait. */
	tryAcquire(weight = 1): boolean {
		const clamped = this.#clamp(weight);
		if (this.#head !== this.#waiting.length || this.#used + clamped > this.capacity) return false;
		this.#used += clamped;
		return true;
	}

	/** Gives back what one `acquire` or `hold` of `weight` took. */
	release(weight = 1): void {
		this.#used -= this.#clamp(weight);
		this.#grant();
	}

	/** Holds `weight` at once, past the capacity if need be, for a stage that frees it on its own: later requests wait. */
	hold(weight: number): void {
		this.#used += this.#clamp(weight);
	}

	/** Runs `task` holding `weight`, given back however it ends. */
	async run<T>(task: () => Promise<T>, weight = 1): Promise<T> {
		await this.acquire(weight);
		try {
			return await task();
		} finally {
			this.release(weight);
		}
	}

	/** Grants waiting requests in order while the oldest fits. */
	#grant(): void {
		while (this.#head < this.#waiting.length) {
			const next = this.#waiting[this.#head] as Waiter;
			if (this.#used + next.weight > this.capacity) break;
			this.#used += next.weight;
			this.#head++;
			next.grant();
		}
		if (this.#head === this.#waiting.length) {
			this.#waiting.length = 0;
			this.#head = 0;
		} else if (this.#head > 1024 && this.#head * 2 > this.#waiting.length) {
			// Granted entries are dropped once they are half the list: each is moved at most once.
			this.#waiting = this.#waiting.slice(this.#head);
			this.#head = 0;
		}
	}

	#clamp(weight: number): number {
		if (!(weight > 0)) throw new RangeError(`a semaphore weight must be positive, not ${weight}`);
		return Math.min(weight, this.capacity);
	}
}

/** Runs the tasks given to it at most `concurrency` at a time, in the order given. */
export type ConcurrencyLimit = <T>(task: () => Promise<T>) => Promise<T>;

export function concurrencyLimit(concurrency: number): ConcurrencyLimit {
	const slots = new Semaphore(concurrency);
	return (task) => slots.run(task);
}

/**
 * At most `limit` tasks in flight, for a producer that must wait for room (the back-pressure
 * that bounds memory however fast it produces). The first task to fail stops new work: every
 * later `add` and `drain` throw its error, and no other task's.
 */
export class BoundedTasks {
	readonly #slots: Semaphore;
	readonly #inflight = new Set<Promise<void>>();
	#failure: { reason: unknown } | undefined;

	constructor(limit: number) {
		this.#slots = new Semaphore(limit);
	}

	/** Waits for room, then starts `start`; `done` is its own promise, rejection included. */
	async add<T>(start: () => Promise<T>): Promise<{ done: Promise<T> }> {
		await this.#slots.acquire();
		if (this.#failure) {
			this.#slots.release();
			throw this.#failure.reason;
		}
		let task: Promise<T>;
		try {
			task = start();
		} catch (error) {
			this.#slots.release();
			throw error;
		}
		// Marked handled here; whoever awaits `task` still sees the rejection.
		task.catch(() => undefined);
		const tracked = task.then(
			() => undefined,
			(reason: unknown) => {
				this.#failure ??= { reason };
			},
		);
		this.#inflight.add(tracked);
		void tracked.finally(() => {
			this.#inflight.delete(tracked);
			this.#slots.release();
		});
		// Wrapped: an async function returning a bare promise would wait for it.
		return { done: task };
	}

	/** Waits for every task; throws the first failure, if any. */
	async drain(): Promise<void> {
		while (this.#inflight.size > 0) await Promise.all(this.#inflight);
		if (this.#failure) throw this.#failure.reason;
	}
}
