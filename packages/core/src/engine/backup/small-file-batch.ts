import type { BlobPool } from "../../repository/blob-pool.js";
import type { BlobSaver } from "./blob-saver.js";
import type { Slab, SlabPool } from "./slab-pool.js";

/** Small files go to the workers this many at most in one message: one round trip per batch, not per file. */
const MAX_FILES = 1024;

type Waiter = { resolve: (id: string) => void; reject: (error: unknown) => void };

/**
 * Gathers the content of small files (one blob each) into one shared buffer and sends it
 * to the workers as one batch. While most files turn out new, the workers hash and seal the
 * batch in one trip and the main thread drops the copies of blobs already stored; otherwise
 * the IDs come back first, the main thread decides which are new, and only those are sealed.
 */
export class SmallFileBatch {
	#slab: Slab | undefined;
	#used = 0;
	#regions: number[] = [];
	#waiters: Waiter[] = [];
	/** A flush is scheduled for the end of this turn. */
	#flushing = false;
	/** Adds are serialised: opening a new buffer may wait for the budget. */
	#queue: Promise<unknown> = Promise.resolve();

	constructor(
		private readonly slabs: SlabPool,
		/** Bytes gathered before they are sent. */
		readonly capacity: number,
		private readonly pool: BlobPool,
		private readonly blobs: BlobSaver,
		/** True while someone waits on the files gathered: each file is then sent as it comes. */
		private readonly urgent: () => boolean,
	) {}

	/** Copies one file's content into the batch; the returned promise gives its blob ID once the batch is hashed. */
	add(pieces: readonly Uint8Array[], total: number): Promise<{ id: Promise<string> }> {
		const added = this.#queue.then(() => this.#add(pieces, total));
		this.#queue = added.catch(() => undefined);
		return added;
	}

	async #add(pieces: readonly Uint8Array[], total: number): Promise<{ id: Promise<string> }> {
		if (this.#slab && (this.#used + total > this.#slab.bytes.length || this.#waiters.length >= MAX_FILES)) this.flush();
		if (!this.#slab) {
			this.#slab = await this.slabs.get(Math.max(this.capacity, total));
			this.#used = 0;
		}
		const slab = this.#slab;
		const offset = this.#used;
		for (const piece of pieces) {
			slab.bytes.set(piece, this.#used);
			this.#used += piece.length;
		}
		this.#regions.push(offset, total);
		const id = new Promise<string>((resolve, reject) => this.#waiters.push({ resolve, reject }));
		if (this.urgent()) this.#flushSoon();
		return { id };
	}

	/**
	 * While someone waits, files are sent once per turn of the event loop rather than one by
	 * one: the reads in flight finish in the same turn, and one message carries them all.
	 */
	#flushSoon(): void {
		if (this.#flushing) return;
		this.#flushing = true;
		setImmediate(() => {
			this.#flushing = false;
			this.flush();
		});
	}

	/** Sends what is gathered: when the buffer is full, and when someone waits on it. */
	flush(): void {
		const slab = this.#slab;
		if (!slab) return;
		const regions = new Uint32Array(this.#regions);
		const waiters = this.#waiters;
		this.#slab = undefined;
		this.#regions = [];
		this.#waiters = [];
		// Mostly new files: hashed and sealed in one trip, the copies of stored ones dropped after.
		const found = this.blobs.sealsBeforeDeciding
			? this.blobs.saveUnhashed("data", slab, regions)
			: this.pool.hash(slab.bytes, regions).then((ids) => {
					this.blobs.save("data", slab, regions, ids);
					return ids;
				});
		found
			.then((ids) => {
				for (let i = 0; i < ids.length; i++) waiters[i]?.resolve(ids[i] as string);
			})
			.catch((error: unknown) => {
				for (const waiter of waiters) waiter.reject(error);
			})
			.finally(() => slab.unref());
	}
}
