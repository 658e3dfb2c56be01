import type { BlobPool } from "../../repository/blob-pool.js";
import type { LocalFile, SourceEntry } from "../../source/source.js";
import type { BlobSaver } from "./blob-saver.js";
import { CHANGED_SINCE_LISTED, LocalReadsBuilder } from "./local-file-reads.js";
import type { Slab, SlabPool } from "./slab-pool.js";

/** Small files go to the workers this many at most in one message: one round trip per batch, not per file. */
const MAX_FILES = 1024;
/**
 * Batches sent and not yet stored before the walk waits for one: enough to keep every worker
 * busy, few enough that a walk quicker than the workers does not take thousands of entries
 * ahead of them (each held until its batch is read).
 */
const MAX_SENT = 6;

/**
 * What became of one file of a batch: its blob ID; or, for a file the workers read from its
 * path, that it no longer matched its entry (to be read the careful way) or why it could not be read.
 */
export type BatchedOutcome = string | typeof CHANGED | Error;
export const CHANGED: unique symbol = Symbol("changed since listed");

/** The outcome of every file of one batch, in the order they were added: one promise per batch, not per file. */
class BatchIds {
	resolve!: (outcomes: BatchedOutcome[]) => void;
	reject!: (error: unknown) => void;
	readonly promise = new Promise<BatchedOutcome[]>((resolve, reject) => {
		this.resolve = resolve;
		this.reject = reject;
	});
	files = 0;

	constructor() {
		// Its failure reaches the run through the blob saver and the trees that wait on it.
		this.promise.catch(() => undefined);
	}
}

/** Where one file's outcome will be: the `index`th of its batch's. */
export interface BatchedFile {
	readonly outcomes: Promise<BatchedOutcome[]>;
	readonly index: number;
}

/**
 * Gathers the content of small files (one blob each) into one shared buffer and sends it to
 * the workers as one batch; files whose source names their path are read there by the workers,
 * into the places kept for them, before the batch is hashed. While most files turn out new, the
 * workers hash and seal the batch in one trip and the main thread drops the copies of blobs
 * already stored; otherwise the IDs come back first, the main thread decides which are new,
 * and only those are sealed.
 */
export class SmallFileBatch {
	#slab: Slab | undefined;
	#used = 0;
	#regions: number[] = [];
	#ids = new BatchIds();
	/** The batch's files the workers are to read, and which of the batch they are. */
	#reads = new LocalReadsBuilder();
	#readIndexes: number[] = [];
	/** The walk is over: no buffer is opened ahead of a file any more. */
	#closed = false;
	/** A flush is scheduled for the end of this turn. */
	#flushing = false;
	/** Adds are serialised: opening a new buffer may wait for the budget. */
	#queue: Promise<unknown> = Promise.resolve();
	/** Batches sent whose files are not all stored yet, and who waits for fewer. */
	#sent = 0;
	#room: { readonly promise: Promise<void>; readonly resolve: () => void } | undefined;

	constructor(
		private readonly slabs: SlabPool,
		/** Bytes gathered before they are sent. */
		readonly capacity: number,
		private readonly pool: BlobPool,
		private readonly blobs: BlobSaver,
		/** True while someone waits on the files gathered: each file is then sent as it comes. */
		private readonly urgent: () => boolean,
		/** Bytes the workers read from files' paths, as each batch is read. */
		private readonly onRead: (bytes: number) => void,
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
		const { outcomes, index } = this.#note(offset, total);
		return { id: outcomes.then((all) => all[index] as string) };
	}

	/** Undefined while the walk may go on adding; else settles once a batch sent is stored. */
	get roomAhead(): Promise<void> | undefined {
		if (this.#sent < MAX_SENT) return undefined;
		if (!this.#room) {
			let resolve!: () => void;
			const promise = new Promise<void>((done) => (resolve = done));
			this.#room = { promise, resolve };
		}
		return this.#room.promise;
	}

	/**
	 * Keeps a place in the open buffer for a file the workers will read from its path, on this
	 * turn, without a promise of its own. Undefined when nothing was added: no buffer has room
	 * for the file now (one is opened for the next file).
	 */
	addLocal(
		file: Pick<SourceEntry, "size" | "inode" | "mtimeNs" | "ctimeNs"> & { readonly local: LocalFile },
	): BatchedFile | undefined {
		const { size } = file;
		const slab = this.#slab;
		if (!slab || this.#used + size > slab.bytes.length || this.#ids.files >= MAX_FILES) {
			if (slab) this.flush();
			this.#open();
			return undefined;
		}
		const offset = this.#used;
		this.#used += size;
		this.#reads.add(file.local.path, file.local.followLinks, offset, size, file.inode, file.mtimeNs, file.ctimeNs);
		const batched = this.#note(offset, size);
		this.#readIndexes.push(batched.index);
		return batched;
	}

	#note(offset: number, length: number): BatchedFile {
		this.#regions.push(offset, length);
		const batch = this.#ids;
		const index = batch.files++;
		if (this.urgent()) this.#flushSoon();
		return { outcomes: batch.promise, index };
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
		const reads = this.#reads.count > 0 ? this.#reads.build() : undefined;
		const readIndexes = this.#readIndexes;
		this.#slab = undefined;
		this.#regions = [];
		this.#ids = new BatchIds();
		this.#reads = new LocalReadsBuilder();
		this.#readIndexes = [];
		if (batch.files === 0) {
			slab.unref();
			return;
		}
		// The next file finds a buffer open, unless the walk is over.
		if (!final) this.#open();
		const outcomes = (async (): Promise<BatchedOutcome[]> => {
			const found: BatchedOutcome[] = new Array(batch.files);
			let stored = regions;
			if (reads) {
				const done = await this.pool.readLocal(slab.bytes, reads);
				const failures = new Map(done.failures.map((failure) => [failure.index, failure]));
				let bytes = 0;
				let unread = 0;
				for (let i = 0; i < readIndexes.length; i++) {
					const read = done.read[i] as number;
					if (read >= 0) {
						bytes += read;
						continue;
					}
					unread++;
					const index = readIndexes[i] as number;
					if (read === CHANGED_SINCE_LISTED) found[index] = CHANGED;
					else {
						const { code, message } = failures.get(i) ?? { code: "EIO", message: "read failed" };
						found[index] = Object.assign(new Error(message), { code });
					}
				}
				this.onRead(bytes);
				// Only what was read is hashed and stored.
				if (unread > 0) {
					const kept: number[] = [];
					for (let index = 0; index < batch.files; index++) {
						if (found[index] === undefined) kept.push(regions[2 * index] as number, regions[2 * index + 1] as number);
					}
					stored = new Uint32Array(kept);
				}
			}
			if (stored.length === 0) return found;
			// Mostly new files: hashed and sealed in one trip, the copies of stored ones dropped after.
			const ids = this.blobs.sealsBeforeDeciding
				? await this.blobs.saveUnhashed("data", slab, stored)
				: await this.pool.hash(slab.bytes, stored).then((ids) => {
						this.blobs.save("data", slab, stored, ids);
						return ids;
					});
			let next = 0;
			for (let index = 0; index < batch.files; index++) if (found[index] === undefined) found[index] = ids[next++] as string;
			return found;
		})();
		this.#sent++;
		outcomes.then(batch.resolve, batch.reject).finally(() => {
			slab.unref();
			this.#sent--;
			this.#room?.resolve();
			this.#room = undefined;
		});
	}
}
