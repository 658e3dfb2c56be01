import type { Semaphore } from "../../host/semaphore.js";

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
		/** The backup's cap on bytes in flight, weighed in bytes. */
		readonly budget: Semaphore,
		/** Bytes of free slabs kept for reuse. */
		readonly keepBytes: number,
	) {}

	/** A slab of at least `size` bytes (its length may be larger). */
	async get(size: number): Promise<Slab> {
		const length = sizeClass(size);
		await this.budget.acquire(length);
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
		this.budget.release(length);
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
