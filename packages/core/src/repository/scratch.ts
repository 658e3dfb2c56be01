/**
 * A buffer reused call after call on one thread, grown to the largest asked for: what a blob
 * is decrypted, decompressed or compressed into on its way, where a buffer of its own per blob
 * would be fresh memory from the system each time.
 */
export class Scratch {
	#bytes = Buffer.alloc(0);

	/** `length` bytes, valid until the next call; their content is whatever was there. */
	take(length: number): Buffer {
		if (this.#bytes.length < length) this.#bytes = Buffer.allocUnsafeSlow(Math.max(length, this.#bytes.length * 2));
		return this.#bytes.subarray(0, length);
	}

	/** Gives the memory back when it has grown past `limit`. */
	trim(limit: number): void {
		if (this.#bytes.length > limit) this.#bytes = Buffer.alloc(0);
	}
}
