/**
 * A cap on the bytes a backup holds in flight — read, not yet sealed into a pack — across
 * every file at once. `take` waits while the cap is reached; a request larger than the cap
 * alone is let through when nothing else is held, so it can never wait forever.
 */
export class ByteBudget {
	#used = 0;
	readonly #waiting: (() => void)[] = [];

	constructor(readonly cap: number) {}

	get used(): number {
		return this.#used;
	}

	async take(bytes: number): Promise<void> {
		while (this.#used > 0 && this.#used + bytes > this.cap) await new Promise<void>((wake) => this.#waiting.push(wake));
		this.#used += bytes;
	}

	give(bytes: number): void {
		this.#used -= bytes;
		for (const wake of this.#waiting.splice(0)) wake();
	}
}

/**
 * A buffer of shared memory the workers read without a copy, counted against the budget
 * while any blob in it is still to be hashed or sealed. Freed buffers of the common size
 * are kept for the next file: read buffers are reused, not reallocated.
 */
export class Slab {
	#refs = 1;

	private constructor(
		readonly bytes: Buffer,
		private readonly owner: SlabPool,
	) {}

	static create(bytes: Buffer, owner: SlabPool): Slab {
		return new Slab(bytes, owner);
	}

	ref(): void {
		this.#refs++;
	}

	unref(): void {
		if (--this.#refs === 0) this.owner.recycle(this);
	}
}

export class SlabPool {
	readonly #free: Slab[] = [];

	constructor(
		readonly budget: ByteBudget,
		/** The size kept for reuse; other sizes are left to the collector. */
		readonly commonSize: number,
		readonly keep = 4,
	) {}

	async get(size: number): Promise<Slab> {
		await this.budget.take(size);
		if (size === this.commonSize) {
			const reused = this.#free.pop();
			if (reused) {
				reused.ref();
				return reused;
			}
		}
		return Slab.create(Buffer.from(new SharedArrayBuffer(size)), this);
	}

	recycle(slab: Slab): void {
		this.budget.give(slab.bytes.length);
		if (slab.bytes.length === this.commonSize && this.#free.length < this.keep) this.#free.push(slab);
	}
}
