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
	/** Bytes of every slab this pool holds, in use or free: a slab past `keepBytes` is not made while a free one can serve. */
	#liveBytes = 0;

	constructor(
		/** The backup's cap on bytes in flight, weighed in bytes. */
		readonly budget: Semaphore,
		/** Bytes of slabs kept alive, in use or free, beyond which a free one is reused or let go first. */
		readonly keepBytes: number,
	) {}

	/** A slab of at least `size` bytes (its length may be larger). */
	async get(size: number): Promise<Slab> {
		const length = sizeClass(size);
		await this.budget.acquire(length);
		return this.#granted(length);
	}

	/** As `get` (which may serve a larger free slab), when the budget has room for `size` now; else undefined, and nothing is held. */
	tryGet(size: number): Slab | undefined {
		const length = sizeClass(size);
		return this.budget.tryAcquire(length) ? this.#granted(length) : undefined;
	}

	/** A slab of `length`, its bytes already acquired from the budget. */
	#granted(length: number): Slab {
		const reused = this.#take(length);
		if (reused) return reused;
		if (this.#liveBytes + length > this.keepBytes) {
			// A larger free slab instead of a new one: a slab let go lingers until every worker's collector runs.
			const larger = this.#smallestFreeAbove(length);
			const slab = larger === undefined ? undefined : this.#take(larger);
			if (larger !== undefined && slab) {
				// Held at once, past the cap if need be, not awaited: a taker waiting for more while
				// holding `length` could wait forever on others doing the same. It goes back on recycle.
				this.budget.hold(larger - length);
				return slab;
			}
			this.#evictUntil(this.keepBytes - length);
		}
		this.#liveBytes += length;
		return Slab.create(Buffer.from(new SharedArrayBuffer(length)), this);
	}

	recycle(slab: Slab): void {
		const length = slab.bytes.length;
		this.budget.release(length);
		if (this.#liveBytes > this.keepBytes) {
			this.#liveBytes -= length;
			return;
		}
		const list = this.#free.get(length) ?? [];
		list.push(slab);
		this.#free.set(length, list);
	}

	/** Bytes of slabs alive now, in use or free, for tests. */
	get liveBytes(): number {
		return this.#liveBytes;
	}

	#take(length: number): Slab | undefined {
		const slab = this.#free.get(length)?.pop();
		slab?.ref();
		return slab;
	}

	#smallestFreeAbove(length: number): number | undefined {
		let best: number | undefined;
		for (const [size, list] of this.#free) {
			if (size > length && list.length > 0 && (best === undefined || size < best)) best = size;
		}
		return best;
	}

	/** Lets free slabs go, smallest first, until the live bytes are at most `bytes` or none is free. */
	#evictUntil(bytes: number): void {
		for (const size of [...this.#free.keys()].sort((a, b) => a - b)) {
			const list = this.#free.get(size) as Slab[];
			while (list.length > 0 && this.#liveBytes > bytes) {
				list.pop();
				this.#liveBytes -= size;
			}
		}
	}
}

function sizeClass(size: number): number {
	let length = MIN_SLAB;
	while (length < size) length *= 2;
	return length;
}
