import type { BlobPool } from "../../repository/blob-pool.js";
import type { SourceEntry } from "../../source/source.js";
import type { BlobSaver } from "./blob-saver.js";
import type { Slab, SlabPool } from "./slab-pool.js";

/** Small files go to the workers this many at most in one message: one round trip per batch, not per file. */
const MAX_FILES = 1024;

/** The IDs of every file of one batch, in the order they were added: one promise per batch, not per file. */
class BatchIds {
	resolve!: (ids: string[]) => void;
	reject!: (error: unknown) => void;
	readonly promise = new Promise<string[]>((resolve, reject) => {
		this.resolve = resolve;
		this.reject = reject;
	});
	files = 0;

	constructor() {
		// Its failure reaches the run through the blob saver and the trees that wait on it.
		this.promise.catch(() => undefined);
	}
}

/** Where one file's blob ID will be: the `index`th of its batch's IDs. */
export interface BatchedFile {
	readonly ids: Promise<string[]>;
	readonly index: number;
}

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
	#ids = new BatchIds();
	/** The walk is over: no buffer is opened ahead of a file any more. */
	#closed = false;
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
		if (this.#slab && (this.#used + total > this.#slab.bytes.length || this.#ids.files >= MAX_FILES)) this.flush();
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
		const { ids, index } = this.#note(offset, total);
		return { id: ids.then((all) => all[index] as string) };
	}

	/**
	 * Reads one file straight into the open buffer, on this turn, without a promise of its own,
	 * at most `max` bytes. Undefined when nothing was added: no buffer has room for the file
	 * now (one is opened for the next file), or the source said it does not fit or changed.
	 */
	addNow(file: Required<Pick<SourceEntry, "size" | "readSmall">>, max: number): BatchedFile | undefined {
		const { size } = file;
		const slab = this.#slab;
		if (!slab || this.#used + size >= slab.bytes.length || this.#ids.files >= MAX_FILES) {
			if (slab) this.flush();
			this.#open();
			return undefined;
		}
		const offset = this.#used;
		const length = file.readSmall(slab.bytes, offset, Math.min(max, slab.bytes.length - offset));
		if (length < 0) return undefined;
		this.#used += length;
		return this.#note(offset, length);
	}

	#note(offset: number, length: number): BatchedFile {
		this.#regions.push(offset, length);
		const batch = this.#ids;
		const index = batch.files++;
		if (this.urgent()) this.#flushSoon();
		return { ids: batch.promise, index };
	}

	/** Opens a buffer in the background, in turn with the adds that wait for one. */
	#open(): void {
		const opened = this.#queue.then(async () => {
			if (this.#slab || this.#closed) return;
			this.#slab = await this.slabs.get(this.capacity);
			this.#used = 0;
		});
		this.#queue = opened.catch(() => undefined);
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

	/**
	 * Sends what is gathered: when the buffer is full, and when someone waits on it. An open
	 * buffer with nothing in it is kept for the next file, until the walk is over (`final`).
	 */
	flush(final = false): void {
		if (final) this.#closed = true;
		const slab = this.#slab;
		if (!slab || (this.#ids.files === 0 && !final)) return;
		const regions = new Uint32Array(this.#regions);
		const batch = this.#ids;
		this.#slab = undefined;
		this.#regions = [];
		this.#ids = new BatchIds();
		if (batch.files === 0) {
			slab.unref();
			return;
		}
		// Mostly new files: hashed and sealed in one trip, the copies of stored ones dropped after.
		const found = this.blobs.sealsBeforeDeciding
			? this.blobs.saveUnhashed("data", slab, regions)
			: this.pool.hash(slab.bytes, regions).then((ids) => {
					this.blobs.save("data", slab, regions, ids);
					return ids;
				});
		found.then(batch.resolve, batch.reject).finally(() => slab.unref());
	}
}
