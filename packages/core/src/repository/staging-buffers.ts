import { sharedBuffer } from "./pack.js";

/** Staging buffers are sized in steps of this: a batch's worst case rounded up, not doubled. */
const STEP = 64 * 1024;

/**
 * The shared memory workers seal blobs into before they are written to their pack's file:
 * one buffer per batch being sealed, reused, and no more than `limit` bytes of them in use
 * at once — a batch waits for an earlier one to be written rather than take more memory.
 * Free buffers are kept only within the same limit: reuse matters as for read slabs (shared
 * memory a worker has seen lives until that worker's collector runs), but not past the cap.
 */
export class StagingBuffers {
	/** Free buffers, smallest first. */
	readonly #free: Buffer[] = [];
	#inUse = 0;
	#freeBytes = 0;
	readonly #waiting: (() => void)[] = [];

	constructor(
		/** Bytes of buffers in use beyond which a taker waits (one buffer alone may be larger). */
		readonly limit: number,
	) {}

	/** A buffer of at least `size` bytes, once the buffers in use leave room for it. */
	async take(size: number): Promise<Buffer> {
		const length = Math.ceil(size / STEP) * STEP;
		while (this.#inUse > 0 && this.#inUse + length > this.limit) {
			await new Promise<void>((resolve) => this.#waiting.push(resolve));
		}
		const at = this.#free.findIndex((buffer) => buffer.length >= length);
		const buffer = at >= 0 ? (this.#free.splice(at, 1)[0] as Buffer) : undefined;
		if (buffer) this.#freeBytes -= buffer.length;
		else this.#dropFree(this.limit - this.#inUse - length);
		const taken = buffer ?? sharedBuffer(length);
		this.#inUse += taken.length;
		return taken;
	}

	give(buffer: Buffer): void {
		this.#inUse -= buffer.length;
		const at = this.#free.findIndex((free) => free.length >= buffer.length);
		this.#free.splice(at < 0 ? this.#free.length : at, 0, buffer);
		this.#freeBytes += buffer.length;
		this.#dropFree(this.limit - this.#inUse);
		for (const wake of this.#waiting.splice(0)) wake();
	}

	/** Lets the largest free buffers go until those kept come to at most `bytes`. */
	#dropFree(bytes: number): void {
		while (this.#freeBytes > Math.max(0, bytes)) this.#freeBytes -= (this.#free.pop() as Buffer).length;
	}

	/** Bytes of buffers taken and not given back, for tests. */
	get inUse(): number {
		return this.#inUse;
	}

	/** Bytes of the buffers kept for reuse, for tests. */
	get freeBytes(): number {
		return this.#freeBytes;
	}
}
