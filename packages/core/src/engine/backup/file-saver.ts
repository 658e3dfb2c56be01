import { HoldfastError } from "../../host/errors.js";
import { Semaphore } from "../../host/semaphore.js";
import type { Repository } from "../../repository/repository.js";
import type { LocalFile, SourceEntry } from "../../source/source.js";
import type { BackupSummary } from "../run-types.js";
import type { BlobSaver } from "./blob-saver.js";
import { SlabPool } from "./slab-pool.js";
import { type BatchedFile, SmallFileBatch } from "./small-file-batch.js";

/** Re-reads a file this many times when it changes while read, then stores it flagged. */
const MAX_READ_ATTEMPTS = 3;
/** Files up to this size (and below the chunker's minimum) are batched: one blob each. */
const SMALL_FILE = 128 * 1024;
const BATCH_BYTES = 1024 * 1024;
/**
 * Read buffer of a large file. A cut is found within a few average chunks almost always;
 * a buffer full without one is replaced by one twice its size. No larger than a core's L2
 * cache (4 MiB here): bytes the read just wrote are still near when a worker cuts and hashes
 * them. Two changed files of 117 MB backed up again, interleaved: 1.09–1.18 s with 8 MiB,
 * 0.94–1.08 with 4, 0.96–1.06 with 3, 1.11–1.15 with 2.
 */
const STREAM_BYTES = 4 * 1024 * 1024;
/** What is left of a piece when the buffer filled exactly: nothing to carry past a read ahead. */
const NOTHING = new Uint8Array(0);
/**
 * Bytes read and not yet sealed into a pack, across all files: the backup's one cap. Packs
 * are assembled and uploaded from temporary files, so nothing past sealing is held in memory
 * (mixed set at scale 0.25: peak 249 MiB with 48 MiB here, 230 with 32, at the same speed).
 */
const IN_FLIGHT_BYTES = 32 * 1024 * 1024;

export interface StoredFile {
	readonly ids: string[];
	readonly size: number;
	/** Kept changing while read: stored as last read. Warned of by whoever uses the file: one read ahead may go unused. */
	readonly changing: boolean;
	/** Reads it took. */
	readonly tries: number;
}

/**
 * Reads a file, has it chunked and hashed by the workers and hands its blobs to the blob
 * saver; returns the blob IDs in order. A file that changes while read is read again (a few
 * times, then stored flagged). Read errors (vanished, unreadable) reach the caller, which
 * skips the file.
 */
export class FileSaver {
	/** Files being read at once; a file waiting for its blob IDs no longer holds a place. */
	/** What the pipeline holds from read to sealing. */
	readonly budget = new Semaphore(IN_FLIGHT_BYTES);
	readonly #reading: Semaphore;
	readonly #streams: SlabPool;
	readonly #batch: SmallFileBatch;
	readonly #smallLimit: number;
	readonly #streamSize: number;
	/** Buffers a small file's chunks are gathered in, one per file being read, reused. */
	readonly #gathering: Buffer[] = [];
	/** Callers waiting on files (the walk, for room; the end of the run): small files are then not held back. */
	#waiters = 0;

	constructor(
		private readonly repository: Repository,
		private readonly blobs: BlobSaver,
		private readonly summary: BackupSummary,
		private readonly signal: AbortSignal,
		concurrency: number,
	) {
		const { min } = repository.config.chunker;
		this.#reading = new Semaphore(concurrency);
		this.#streamSize = STREAM_BYTES;
		// Slabs alive, in use or free, are kept to the cap: one let go lingers in the workers until their collector runs.
		const slabs = new SlabPool(this.budget, IN_FLIGHT_BYTES);
		this.#streams = slabs;
		this.#batch = new SmallFileBatch(
			slabs,
			BATCH_BYTES,
			repository.pool,
			blobs,
			() => this.#waiters > 0,
			(bytes) => {
				summary.bytes.read += bytes;
			},
		);
		this.#smallLimit = Math.min(SMALL_FILE, min);
	}

	/** Waits for a place to read `entry`, then starts; `done` settles when its blob IDs are known. */
	async save(entry: SourceEntry): Promise<{ done: Promise<StoredFile> }> {
		await this.#reading.acquire();
		const done = this.#save(entry);
		done.catch(() => undefined);
		return { done };
	}

	/**
	 * A small file whose source names its path (`local`), given a place in the batch for the
	 * workers to read it into, on this turn: no promise and no read slot of its own, its
	 * outcome one of its batch's. Undefined when the file is to go through `save`: larger,
	 * empty, no path, or no room in the batch just now.
	 */
	saveNow(entry: SourceEntry): BatchedFile | undefined {
		if (!this.batches(entry)) return undefined;
		this.#checkAbort();
		return this.#batch.addLocal(entry as SourceEntry & { local: LocalFile });
	}

	/**
	 * Waits for `task` with small files sent as they are read rather than gathered: what is
	 * waited on may need them, and the walk that would fill the batch is the one waiting.
	 */
	async waitFor<T>(task: Promise<T>): Promise<T> {
		this.#waiters++;
		this.#batch.flush();
		try {
			return await task;
		} finally {
			this.#waiters--;
		}
	}

	/** Whether `saveNow` takes `entry` into a batch (given room): small, not empty, its path named. */
	batches(entry: SourceEntry): boolean {
		return entry.local !== undefined && entry.size > 0 && entry.size <= this.#smallLimit;
	}

	/**
	 * Undefined while small files may be taken; else settles when they may again, or fails when
	 * the backup is aborted: the walk waits rather than take thousands of files ahead of the
	 * workers that read them.
	 */
	get roomForSmallFiles(): Promise<void> | undefined {
		const room = this.#batch.roomAhead;
		if (!room) return undefined;
		const { signal } = this;
		const waited = new Promise<void>((resolve, reject) => {
			const aborted = () => reject(new HoldfastError("ABORTED", "backup aborted"));
			if (signal.aborted) return aborted();
			signal.addEventListener("abort", aborted, { once: true });
			void room.then(() => {
				signal.removeEventListener("abort", aborted);
				resolve();
			});
		});
		// An abort is the walk's to report, at its next entry, when no one waits on this any more.
		waited.catch(() => undefined);
		return waited;
	}

	/** Sends the small files gathered so far, however few. */
	sendGathered(): void {
		this.#batch.flush();
	}

	/** The walk has ended: from now on nothing is held back. */
	close(): void {
		this.#waiters++;
		this.#batch.flush(true);
	}

	async #save(entry: SourceEntry): Promise<StoredFile> {
		for (let attempt = 1; ; attempt++) {
			let content: { ids: Promise<string[]>; size: number };
			let stable: boolean;
			if (attempt > 1) await this.#reading.acquire();
			try {
				content = await this.#read(entry);
				stable = !entry.unchangedSinceScan || (await entry.unchangedSinceScan());
			} finally {
				this.#reading.release();
			}
			this.summary.bytes.read += content.size;
			if (stable || attempt >= MAX_READ_ATTEMPTS)
				return { ids: await content.ids, size: content.size, changing: !stable, tries: attempt };
			// This attempt's blobs are stored all the same; only its IDs are dropped.
			content.ids.catch(() => undefined);
		}
	}

	/** One read of the whole file: its size now, and its blob IDs once the workers have them. */
	async #read(entry: SourceEntry): Promise<{ ids: Promise<string[]>; size: number }> {
		const stream = (entry.read as () => AsyncIterable<Uint8Array>)()[Symbol.asyncIterator]() as AsyncIterator<
			Uint8Array,
			unknown,
			Uint8Array | undefined
		>;
		if (entry.size > this.#smallLimit) return this.#stream(stream, [], entry.size);
		// A chunk is valid until the next is asked for: a small file's are gathered in a buffer of the saver's.
		const gathered = this.#gathering.pop() ?? Buffer.allocUnsafeSlow(this.#smallLimit);
		try {
			let total = 0;
			for (;;) {
				const next = await stream.next();
				if (next.done) break;
				this.#checkAbort();
				const piece = next.value;
				// Grew past small while read: chunked like a large file.
				if (total + piece.length > this.#smallLimit) {
					return await this.#stream(stream, [gathered.subarray(0, total), piece], entry.size);
				}
				gathered.set(piece, total);
				total += piece.length;
			}
			if (total === 0) return { ids: Promise.resolve([]), size: 0 };
			const { id } = await this.#batch.add([gathered.subarray(0, total)], total);
			return { ids: id.then((one) => [one]), size: total };
		} catch (error) {
			await stream.return?.();
			throw error;
		} finally {
			this.#gathering.push(gathered);
		}
	}

	/**
	 * A large file: read into shared buffers the workers cut and hash in place; chunks cut in
	 * one buffer are sealed from it while reading goes on in the next.
	 */
	async #stream(
		stream: AsyncIterator<Uint8Array, unknown, Uint8Array | undefined>,
		prefix: Uint8Array[],
		sizeHint: number,
	): Promise<{ ids: Promise<string[]>; size: number }> {
		const ids: string[] = [];
		let size = 0;
		let slab = await this.#streams.get(this.#slabSize(sizeHint + 1));
		let filled = 0;
		let start = 0;
		const cut = async (final: boolean) => {
			const { lengths, ids: cutIds } = await this.repository.pool.chunk(slab.bytes.subarray(start, filled), final);
			const regions = new Uint32Array(lengths.length * 2);
			for (let i = 0; i < lengths.length; i++) {
				regions[2 * i] = start;
				regions[2 * i + 1] = lengths[i] as number;
				start += lengths[i] as number;
			}
			this.blobs.save("data", slab, regions, cutIds);
			ids.push(...cutIds);
		};
		// The uncut tail, held while this buffer goes back and the next is taken; one buffer for the whole file.
		let tailCopy: Buffer | undefined;
		const refill = async () => {
			// The uncut tail moves to a fresh buffer; this one is freed once its chunks are sealed.
			// Copied with `copy`, a memmove: `Buffer.from` a view of shared memory copies byte by
			// byte, 18 ms for 6 MiB where this takes under one.
			const length = filled - start;
			const grow = start === 0 ? slab.bytes.length * 2 : 0;
			const wanted = Math.max(grow, this.#slabSize(length + Math.max(0, sizeHint - size) + 1), length + 65536);
			// Straight into the next buffer when the budget has room for both now. Waiting for it
			// while holding this one could wait forever on other files doing the same: then the
			// tail is set aside, this buffer let go, and the next awaited.
			const next = this.#streams.tryGet(wanted);
			if (next) {
				slab.bytes.copy(next.bytes, 0, start, filled);
				slab.unref();
				slab = next;
			} else {
				if (!tailCopy || tailCopy.length < length) tailCopy = Buffer.allocUnsafeSlow(length);
				slab.bytes.copy(tailCopy, 0, start, filled);
				slab.unref();
				slab = await this.#streams.get(wanted);
				tailCopy.copy(slab.bytes, 0, 0, length);
			}
			filled = length;
			start = 0;
		};
		// A read asked for while a full buffer is cut: the disk and the workers are busy at once.
		// Only for a file read alone: with others, their reads already overlap its cuts, and
		// pieces read ahead by every file would add up past the budget. A chunk is valid until
		// the next is asked for, so what is left of the current one is carried first.
		let ahead: Promise<IteratorResult<Uint8Array>> | undefined;
		let carry: Buffer | undefined;
		// Not while a small file's first chunks are copied: the last of them is still the source's.
		let inPrefix = prefix.length > 0;
		const readAhead = (rest: Uint8Array): Uint8Array => {
			if (ahead || inPrefix || this.#reading.used > 1) return rest;
			if (rest.length > 0) {
				if (!carry || carry.length < rest.length) carry = Buffer.allocUnsafeSlow(rest.length);
				carry.set(rest);
				rest = carry.subarray(0, rest.length);
			}
			ahead = stream.next();
			ahead.catch(() => undefined);
			return rest;
		};
		try {
			let pending = prefix;
			for (;;) {
				for (const whole of pending) {
					size += whole.length;
					let piece = whole;
					for (let at = 0; at < piece.length; ) {
						if (filled === slab.bytes.length) {
							piece = readAhead(piece.subarray(at));
							at = 0;
							await cut(false);
							await refill();
						}
						const n = Math.min(piece.length - at, slab.bytes.length - filled);
						slab.bytes.set(piece.subarray(at, at + n), filled);
						filled += n;
						at += n;
					}
				}
				inPrefix = false;
				if (!ahead && filled === slab.bytes.length) {
					// Cut before the next read, so that it can go straight into the next buffer.
					readAhead(NOTHING);
					await cut(false);
					await refill();
				}
				// The source may read straight into the buffer (then nothing is copied); not while a read ahead is pending.
				const offer = ahead ? undefined : slab.bytes.subarray(filled);
				const next = await (ahead ?? stream.next(offer));
				ahead = undefined;
				if (next.done) break;
				this.#checkAbort();
				const piece = next.value;
				if (offer && piece.buffer === offer.buffer && piece.byteOffset === offer.byteOffset && piece.length <= offer.length) {
					size += piece.length;
					filled += piece.length;
					pending = [];
				} else pending = [piece];
			}
			await cut(true);
		} finally {
			slab.unref();
			await ahead?.catch(() => undefined);
			await stream.return?.();
		}
		return { ids: Promise.resolve(ids), size };
	}

	/** A large file's buffers are of the common size; a smaller file's fit it. */
	#slabSize(wanted: number): number {
		return Math.min(wanted, this.#streamSize);
	}

	#checkAbort(): void {
		if (this.signal.aborted) throw new HoldfastError("ABORTED", "backup aborted");
	}
}
