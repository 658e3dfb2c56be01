/**
 * A cap on the bytes a backup holds in flight across every file at once: read and not yet
 * in a pack, and packs being uploaded. `take` waits while the cap is reached; a request
 * larger than the cap alone is let through when nothing else is held, so it can never wait
 * forever. `hold` counts bytes without waiting, for a stage that frees them on its own.
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

	/** Counts bytes at once, past the cap if need be: takers wait until they are given back. */
	hold(bytes: number): void {
		this.#used += bytes;
	}

	give(bytes: number): void {
		this.#used -= bytes;
		for (const wake of this.#waiting.splice(0)) wake();
	}
}

/**
 * A buffer of shared memory the workers read without a copy, counted against the budget
 * while any blob in it is still to be hashed or sealed.
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

/** The smallest slab; sizes go up in powers of two from here. */
const MIN_SLAB = 64 * 1024;

/**
 * Slabs in powers of two, reused. Reuse matters twice: read buffers are not reallocated per
 * file, and shared memory a worker has seen lives until that worker's collector runs — a
 * fresh buffer per file would pile up there however little the main thread holds.
 */
export class SlabPool {
	readonly #free = new Map<number, Slab[]>();
	#freeBytes = 0;

	constructor(
		readonly budget: ByteBudget,
		/** Bytes of free slabs kept for reuse. */
		readonly keepBytes: number,
	) {}

	/** A slab of at least `size` bytes (its length may be larger). */
	async get(size: number): Promise<Slab> {
		const length = sizeClass(size);
		await this.budget.take(length);
		const reused = this.#free.get(length)?.pop();
		if (reused) {
			this.#freeBytes -= length;
			reused.ref();
			return reused;
		}
		return Slab.create(Buffer.from(new SharedArrayBuffer(length)), this);
	}

	recycle(slab: Slab): void {
		const length = slab.bytes.length;
		this.budget.give(length);
		if (this.#freeBytes + length > this.keepBytes) return;
		const list = this.#free.get(length) ?? [];
		list.push(slab);
		this.#free.set(length, list);
		this.#freeBytes += length;
	}
}

function sizeClass(size: number): number {
	let length = MIN_SLAB;
	while (length < size) length *= 2;
	return length;
}
