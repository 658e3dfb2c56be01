import { sharedBuffer } from "./pack.js";

/**
 * The buffers packs are assembled in, reused from pack to pack and capped in number: a new
 * pack waits for an uploaded one's buffer instead of taking fresh memory while uploads lag.
 * Reuse matters beyond the count: a buffer a worker sealed into lives until that worker's
 * collector runs, and a freed one of this size leaves the allocator holding its pages.
 */
export class PackBuffers {
	readonly #free: Buffer[] = [];
	/** Buffers handed out and not yet given back or dropped. */
	#out = 0;
	/** Buffers of closed packs not yet given back: only these can free a waiting taker. */
	#returning = 0;
	readonly #waiting: (() => void)[] = [];

	constructor(
		/** Bytes of each buffer. */
		readonly capacity: number,
		/** Buffers that may exist at once while one is on its way back. */
		readonly limit: number,
	) {}

	/**
	 * A buffer for a new pack. Waits while the cap is reached and a closed pack will give one
	 * back; when every buffer belongs to an open pack (several locks at once), takes one more,
	 * as waiting would never end.
	 */
	async take(): Promise<Buffer> {
		while (this.#free.length === 0 && this.#out >= this.limit && this.#returning > 0) {
			await new Promise<void>((resolve) => this.#waiting.push(resolve));
		}
		this.#out++;
		return this.#free.pop() ?? sharedBuffer(this.capacity);
	}

	/** A pack is closed: its buffer comes back once it is uploaded (`give`) or failed (`drop`). */
	closing(): void {
		this.#returning++;
	}

	/** Takes back a closed pack's buffer once it is stored (or the pack was empty); one grown past the capacity is let go. */
	give(buffer: Buffer): void {
		if (buffer.length === this.capacity) this.#free.push(buffer);
		this.#settle();
	}

	/** A closed pack's buffer is not coming back (its upload failed): its place is free again. */
	drop(): void {
		this.#settle();
	}

	#settle(): void {
		this.#out--;
		this.#returning--;
		for (const wake of this.#waiting.splice(0)) wake();
	}

	/** Buffers in use now, for tests. */
	get inUse(): number {
		return this.#out;
	}
}
