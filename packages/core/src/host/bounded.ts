/**
 * Keeps at most `limit` promises in flight: `add` waits for room first. This is the
 * back-pressure that keeps a backup's memory bounded however fast the source reads.
 */
export class Bounded {
	readonly #inflight = new Set<Promise<unknown>>();
	#failure: unknown;

	constructor(private readonly limit: number) {}

	async add<T>(start: () => Promise<T>): Promise<{ done: Promise<T> }> {
		while (this.#inflight.size >= this.limit) await Promise.race(this.#inflight).catch(() => undefined);
		if (this.#failure !== undefined) throw this.#failure;
		const task = start();
		// Marked handled here; whoever awaits `task` still sees the rejection.
		task.catch(() => undefined);
		const tracked = task.then(
			() => undefined,
			(error: unknown) => {
				this.#failure ??= error;
			},
		);
		this.#inflight.add(tracked);
		void tracked.finally(() => this.#inflight.delete(tracked));
		// Wrapped: an async function returning a bare promise would wait for it.
		return { done: task };
	}

	async drain(): Promise<void> {
		while (this.#inflight.size > 0) await Promise.all(this.#inflight);
		if (this.#failure !== undefined) throw this.#failure;
	}
}
