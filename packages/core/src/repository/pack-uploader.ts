import type { ObjectLock } from "../destination/destination.js";
import { BoundedTasks } from "../host/semaphore.js";
import { BLOB_OVERHEAD, encodeBlob } from "./blob-codec.js";
import { type BlobPool, sharedCopy } from "./blob-pool.js";
import type { Regions } from "./blob-work.js";
import type { RepositoryKeys } from "./crypto.js";
import { type BlobType, packKey } from "./format.js";
import type { IndexPack } from "./index-file.js";
import type { IndexStore } from "./index-store.js";
import type { ObjectWriter } from "./object-writer.js";
import { PackBuilder, type PackedBlob, type ReservedBlob } from "./pack.js";
import { legacyPackFileFolder, PackFile, removeStalePackFiles } from "./pack-file.js";
import { PackSlots } from "./pack-slots.js";
import { StagingBuffers } from "./staging-buffers.js";

// The pack uploader: decides which blobs to store, gathers them into packs and uploads those a few at a time.

export interface PackUploaderOptions {
	/** Target pack size in bytes (default 16 MiB). */
	readonly packSize?: number | undefined;
	/** Pack uploads in flight at once. */
	readonly uploadConcurrency?: number | undefined;
	readonly compression: boolean;
	/** The largest chunk: a pack has room for one more blob of that size. */
	readonly largestBlob: number;
}

/** Blobs up to this size (most trees) are hashed and sealed on the calling thread. */
const INLINE_BLOB = 64 * 1024;

/** The claim of a blob sealed into a pack as it was claimed: settled from the start, one for all. */
const WRITTEN: Promise<void> & { done: () => void } = Object.assign(Promise.resolve(), { done: () => undefined });

/**
 * A batch of blobs for one trip to a worker holds at most this much of a staging buffer
 * (one larger blob goes alone): a large file's read buffer is sealed in several batches,
 * spread over the workers and written to the pack as each is done.
 */
const RESERVATION_BYTES = 2 * 1024 * 1024;

/** Staging buffers in use at once: enough batches queued to keep every worker busy, not a read buffer's worth each. */
const STAGING_BYTES = 8 * 1024 * 1024;

/** Index objects are written every this many packs, so a killed run loses at most that much work. */
const PACKS_PER_INDEX = 8;

export class PackUploader {
	/** Blobs written (or being written) this run, all with this run's lock; cleared per run. */
	readonly #pending = new Map<string, Promise<void> & { done: () => void }>();
	/**
	 * Open packs, one per blob type and lock: trees apart from data (they churn at another
	 * pace, so neither keeps the other's dead bytes alive), and renewed copies apart when
	 * they carry a lock of their own.
	 */
	readonly #packs = new Map<string, { builder: PackBuilder; lock: ObjectLock }>();
	/** Pack uploads in flight, which bounds the packs held in memory; the first failure stops the rest of the run's. */
	#uploads: BoundedTasks;
	/** Packs closed while workers still seal into them: each starts uploading once they are done. */
	readonly #closing = new Set<Promise<void>>();
	/** Bytes sealed into packs, and the worst case reserved for them. */
	#sealedTotal = 0;
	#reservedTotal = 0;
	/** Places for packs: one per open pack and per pack being uploaded, no more. */
	readonly #slots: PackSlots;
	/** Where workers seal batches of blobs before they are written to their pack's file. */
	readonly #staging = new StagingBuffers(STAGING_BYTES);
	/** The removal of pack files killed runs left, started with this uploader's first pack. */
	#swept: Promise<unknown> | undefined;
	/** The last blob being added to a pack: the next waits for it. */
	#adding: Promise<unknown> = Promise.resolve();

	constructor(
		private readonly options: PackUploaderOptions,
		private readonly keys: RepositoryKeys,
		private readonly pool: BlobPool,
		private readonly writer: ObjectWriter,
		private readonly indexStore: IndexStore,
	) {
		this.#uploads = new BoundedTasks(this.#concurrency);
		// The open pack and one per upload: a pack waiting for its last blobs or an upload slot holds one of those.
		this.#slots = new PackSlots(this.#concurrency + 1);
	}

	get #concurrency(): number {
		return this.options.uploadConcurrency ?? 2;
	}

	get #packSize(): number {
		return this.options.packSize ?? 16 * 1024 * 1024;
	}

	/** Room for a full pack plus one largest blob: a batch reserved before the pack is judged full still fits. */
	get #packCapacity(): number {
		return this.#packSize + this.options.largestBlob + 1024;
	}

	async #newPack(): Promise<PackBuilder> {
		// Pack files of killed runs go before this uploader makes its first; its own are never touched.
		// The shared folder of earlier versions too: what their killed runs left there is this user's to remove.
		this.#swept ??= Promise.all([removeStalePackFiles(), removeStalePackFiles(legacyPackFileFolder())]).catch(() => undefined);
		await this.#slots.take();
		return new PackBuilder(PackFile.create(), this.#staging, this.#packCapacity);
	}

	/** Removes the files of packs left open (a run that failed, then the repository closed): nothing of them stays on disk. */
	async discardOpenPacks(): Promise<void> {
		const open = [...this.#packs.values()];
		this.#packs.clear();
		await Promise.all(open.map(({ builder }) => builder.file.remove()));
	}

	/** A new run: a blob written by an earlier run may need a new copy under this run's lock. */
	beginRun(): void {
		this.#pending.clear();
		// A failed upload ended the run before; it does not fail the next one.
		this.#uploads = new BoundedTasks(this.#concurrency);
	}

	/**
	 * Stores a blob unless a copy exists that is locked at least until `minLock`.
	 * Returns its ID and whether bytes were added.
	 */
	async saveBlob(type: BlobType, data: Uint8Array, minLock?: Date): Promise<{ id: string; added: boolean }> {
		// A tree of a few KiB is hashed and sealed here in microseconds: a trip to a worker costs more.
		const inline = data.length <= INLINE_BLOB;
		const shared = inline || data.buffer instanceof SharedArrayBuffer ? data : sharedCopy(data);
		const whole = new Uint32Array([0, shared.length]);
		const id = inline ? this.keys.blobId(data) : ((await this.pool.hash(shared, whole)) as [string])[0];
		if (!this.claimBlob(id, minLock)) {
			await this.#pending.get(id);
			return { id, added: false };
		}
		try {
			const sealed = inline
				? encodeBlob(this.keys.raw, data, this.options.compression, type)
				: ((await this.pool.seal(shared, whole, this.options.compression, type)) as [Uint8Array])[0];
			await this.addSealedBlob(type, id, sealed, data.length);
		} catch (error) {
			this.releaseClaim(id);
			throw error;
		}
		return { id, added: true };
	}

	/**
	 * The dedup decision: true when this caller must store blob `id` — no copy locked until
	 * `minLock` is indexed and none is being written this run. A true answer is a claim that
	 * `addSealedBlob` (or `releaseClaim`) settles.
	 */
	claimBlob(id: string, minLock?: Date): boolean {
		if (this.#storedOrPending(id, minLock)) return false;
		let done!: () => void;
		const pending = new Promise<void>((resolve) => (done = resolve));
		this.#pending.set(id, Object.assign(pending, { done }));
		return true;
	}

	/** Whether a copy locked until `minLock` is indexed, or one is being written this run. */
	#storedOrPending(id: string, minLock: Date | undefined): boolean {
		const index = this.indexStore.index;
		// A copy in a pack grooming condemned may be deleted before this run's snapshot is written.
		const known = index.reusable(id);
		if (known && index.copyLockedUntil(id, minLock)) return true;
		return this.#pending.has(id);
	}

	/** Gives up a claim whose blob could not be sealed: a later copy may claim it again. */
	releaseClaim(id: string): void {
		const pending = this.#pending.get(id);
		this.#pending.delete(id);
		pending?.done();
	}

	/** Appends a claimed, sealed blob to the open pack of its type; a full pack starts uploading. */
	async addSealedBlob(type: BlobType, id: string, sealed: Uint8Array, rawLength: number, lock?: ObjectLock): Promise<void> {
		await this.#addToPack(type, id, sealed, rawLength, lock);
		this.#pending.get(id)?.done();
	}

	/**
	 * Seals claimed blobs — the `regions` of `data`, in shared memory — straight into the open
	 * pack of their type: each batch of them gets a region of the pack's buffer that a worker
	 * seals into, so no sealed copy comes back to this thread. Resolves once they are in a
	 * pack (or uploading); on failure, blobs not stored keep their claims for the caller to release.
	 */
	async sealIntoPack(type: BlobType, data: Uint8Array, regions: Regions, ids: readonly string[]): Promise<void> {
		await this.#inReservedRegions(type, regions, (builder, offset, first, count) =>
			this.#sealReserved(
				type,
				builder,
				offset,
				data,
				regions.subarray(2 * first, 2 * (first + count)),
				ids.slice(first, first + count),
			),
		);
	}

	/**
	 * Hashes and seals the `regions` of `data` (shared memory) straight into the open pack of
	 * their type in one trip to a worker per pack region, before anyone knows which are new:
	 * as each comes back, the dedup decision of `claimBlob` is made for every ID in order,
	 * `decided` is told it, and the copies of blobs stored already are dropped from the pack
	 * before it closes. Resolves to the IDs of all regions, in order.
	 */
	async hashSealIntoPack(
		type: BlobType,
		data: Uint8Array,
		regions: Regions,
		minLock: Date | undefined,
		decided: (id: string, rawLength: number, added: boolean) => void,
	): Promise<string[]> {
		const ids: string[] = [];
		await this.#inReservedRegions(type, regions, async (builder, offset, first, count) => {
			const found = await this.#hashSealReserved(
				type,
				builder,
				offset,
				data,
				regions.subarray(2 * first, 2 * (first + count)),
				minLock,
				decided,
			);
			for (let i = 0; i < found.length; i++) ids[first + i] = found[i] as string;
		});
		return ids;
	}

	/**
	 * Reserves room in the open pack of `type` for `regions`, batch by batch in the order asked,
	 * and starts `seal` on each batch as soon as it has its room; settles when all have, with
	 * the first failure if any.
	 */
	async #inReservedRegions(
		type: BlobType,
		regions: Regions,
		seal: (builder: PackBuilder, offset: number, first: number, count: number) => Promise<void>,
	): Promise<void> {
		const sealing: Promise<void>[] = [];
		for (let first = 0; 2 * first < regions.length; ) {
			const reserved = this.#adding.then(() => this.#reserveFor(type, regions, first));
			this.#adding = reserved.catch(() => undefined);
			const { builder, offset, count } = await reserved;
			const task = seal(builder, offset, first, count);
			task.catch(() => undefined);
			sealing.push(task);
			first += count;
		}
		const outcomes = await Promise.allSettled(sealing);
		const failed = outcomes.find((outcome) => outcome.status === "rejected");
		if (failed) throw failed.reason;
	}

	async #hashSealReserved(
		type: BlobType,
		builder: PackBuilder,
		offset: number,
		data: Uint8Array,
		regions: Regions,
		minLock: Date | undefined,
		decided: (id: string, rawLength: number, added: boolean) => void,
	): Promise<string[]> {
		let found: { ids: string[]; lengths: Uint32Array };
		try {
			found = await this.pool.hashSealInto(data, regions, this.options.compression, builder.staged(offset), 0);
		} catch (error) {
			builder.commit(offset, []);
			throw error;
		}
		const blobs: ReservedBlob[] = [];
		let at = 0;
		try {
			for (let i = 0; i < found.ids.length; i++) {
				const id = found.ids[i] as string;
				const length = found.lengths[i] as number;
				const rawLength = regions[2 * i + 1] as number;
				this.#sealedTotal += length;
				this.#reservedTotal += rawLength + BLOB_OVERHEAD;
				const added = !this.#storedOrPending(id, minLock);
				// Claimed and in the pack in the same turn: nothing is left to wait for.
				if (added) {
					this.#pending.set(id, WRITTEN);
					blobs.push({ type, id, length, rawLength, at });
				}
				decided(id, rawLength, added);
				at += length;
			}
		} finally {
			// Only what was claimed joins the pack: a copy of a stored blob leaves no bytes behind.
			builder.commit(offset, blobs);
		}
		return found.ids;
	}

	/**
	 * A region of the open pack for as many of the regions from `first` on as fit. Whether
	 * the pack is full is judged by what sealing has shrunk blobs to so far: a pack counted
	 * full while workers still seal into it is closed without waiting for them, and uploads
	 * once they are done.
	 */
	async #reserveFor(
		type: BlobType,
		regions: Regions,
		first: number,
	): Promise<{ builder: PackBuilder; offset: number; count: number }> {
		const lock = this.writer.requireLock();
		const slot = `${type}:${lock.mode}:${lock.until.getTime()}`;
		for (;;) {
			let open = this.#packs.get(slot);
			if (!open) {
				open = { builder: await this.#newPack(), lock };
				this.#packs.set(slot, open);
			}
			const { builder } = open;
			const ratio = this.#sealRatio;
			const expected = builder.size + builder.pendingBytes * ratio;
			let count = 0;
			let bytes = 0;
			for (let i = first; expected < this.#packSize && 2 * i < regions.length; i++) {
				const worst = (regions[2 * i + 1] as number) + BLOB_OVERHEAD;
				if (bytes + worst > builder.room || (count > 0 && bytes + worst > RESERVATION_BYTES)) break;
				bytes += worst;
				count++;
				// The blob that may reach the pack's size is its last, as when blobs are added one by one.
				if (expected + bytes * ratio >= this.#packSize) break;
			}
			if (count > 0) {
				// Within the chain of adds: nothing else reserves in this pack or closes it meanwhile.
				const staging = await this.#staging.take(bytes);
				return { builder, offset: builder.reserve(bytes, staging) as number, count };
			}
			if (builder.count === 0 && builder.reservations === 0) {
				throw new Error(`pack uploader: a blob of ${regions[2 * first + 1]} bytes does not fit an empty pack`);
			}
			// Nothing sealed yet to judge by: the first pack waits for its blobs rather than close a third full.
			if (this.#reservedTotal === 0 && builder.reservations > 0) {
				await builder.drained();
				continue;
			}
			this.#packs.delete(slot);
			const closing: Promise<void> = this.#upload(open).finally(() => this.#closing.delete(closing));
			closing.catch(() => undefined);
			this.#closing.add(closing);
		}
	}

	/** Sealed bytes per byte reserved so far: how much smaller than their worst case blobs come out. */
	get #sealRatio(): number {
		return this.#reservedTotal > 0 ? this.#sealedTotal / this.#reservedTotal : 1;
	}

	async #sealReserved(
		type: BlobType,
		builder: PackBuilder,
		offset: number,
		data: Uint8Array,
		regions: Regions,
		ids: readonly string[],
	): Promise<void> {
		let lengths: Uint32Array;
		try {
			lengths = await this.pool.sealInto(data, regions, this.options.compression, builder.staged(offset), 0);
		} catch (error) {
			builder.commit(offset, []);
			throw error;
		}
		const blobs: ReservedBlob[] = ids.map((id, i) => ({
			type,
			id,
			length: lengths[i] as number,
			rawLength: regions[2 * i + 1] as number,
		}));
		builder.commit(offset, blobs);
		for (let i = 0; i < ids.length; i++) {
			this.#sealedTotal += lengths[i] as number;
			this.#reservedTotal += (regions[2 * i + 1] as number) + BLOB_OVERHEAD;
		}
		for (const id of ids) this.#pending.get(id)?.done();
	}

	/**
	 * Copies a blob, sealed bytes as they are, into a new pack locked with `lock` (the run's by
	 * default): for a blob whose stored copies' locks end too soon, or (`evenIfWritten`) whose
	 * copy grooming condemned while this run used it. The caller has verified the bytes
	 * (`readSealedBlob`).
	 */
	async copySealedBlob(
		type: BlobType,
		id: string,
		sealed: Uint8Array,
		rawLength: number,
		options: { lock?: ObjectLock; evenIfWritten?: boolean } = {},
	): Promise<void> {
		if (!options.evenIfWritten) {
			if (this.#pending.has(id)) return;
			this.#pending.set(id, Object.assign(Promise.resolve(), { done: () => undefined }));
		}
		await this.#addToPack(type, id, sealed, rawLength, options.lock);
	}

	/** Writes the open packs and waits for every upload. */
	async flushPacks(): Promise<void> {
		await this.#adding;
		for (const slot of [...this.#packs.keys()]) await this.#startPackUpload(slot);
		while (this.#closing.size > 0) await Promise.all([...this.#closing]);
		await this.#uploads.drain();
	}

	/**
	 * Blobs go into packs one at a time: a full pack waits for an upload slot before another is
	 * opened, so the packs in memory are the open one and those uploading, never a pile of
	 * full ones filled while the uploads are slow.
	 */
	#addToPack(type: BlobType, id: string, sealed: Uint8Array, rawLength: number, lock?: ObjectLock): Promise<void> {
		const added = this.#adding.then(() => this.#appendToPack(type, id, sealed, rawLength, lock));
		this.#adding = added.catch(() => undefined);
		return added;
	}

	async #appendToPack(
		type: BlobType,
		id: string,
		sealed: Uint8Array,
		rawLength: number,
		lock = this.writer.requireLock(),
	): Promise<void> {
		const slot = `${type}:${lock.mode}:${lock.until.getTime()}`;
		let open = this.#packs.get(slot);
		// Workers sealing into the pack: its end is known once they are done.
		if (open && open.builder.reservations > 0) await open.builder.drained();
		if (open && open.builder.count > 0 && !open.builder.fits(sealed.length)) {
			await this.#startPackUpload(slot);
			open = undefined;
		}
		if (!open) {
			open = { builder: await this.#newPack(), lock };
			this.#packs.set(slot, open);
		}
		open.builder.add(type, id, sealed, rawLength);
		if (open.builder.size >= this.#packSize) await this.#startPackUpload(slot);
	}

	async #startPackUpload(slot: string): Promise<void> {
		const open = this.#packs.get(slot);
		this.#packs.delete(slot);
		if (open) await this.#upload(open);
	}

	/** Uploads a closed pack once every blob sealed into it is there; its file is removed whatever happens. */
	async #upload(open: { builder: PackBuilder; lock: ObjectLock }): Promise<void> {
		this.#slots.closing();
		let started = false;
		try {
			await open.builder.drained();
			if (open.builder.count > 0) {
				await this.#startUpload(open, () => {
					started = true;
				});
			}
		} finally {
			if (!started) {
				await open.builder.file.remove();
				this.#slots.release();
			}
		}
	}

	/** Starts uploading a closed pack once an upload slot is free; its file is removed and its place freed once stored or failed. */
	async #startUpload(open: { builder: PackBuilder; lock: ObjectLock }, started: () => void): Promise<void> {
		const { builder, lock } = open;
		// Waits while every upload slot is busy: the packs held at once stay bounded.
		await this.#uploads.add(async () => {
			started();
			let stored: { key: string; version: string | undefined; size: number; blobs: PackedBlob[] };
			try {
				// The MD5 a store wants sent with the file comes from the same read as the pack's key.
				const md5 = this.writer.destination.capabilities.fileDigests?.includes("md5") ?? false;
				const { hash, size, blobs, ...digests } = await builder.finish(this.keys, (path, bytes) =>
					this.pool.digestFile(path, bytes, md5),
				);
				const key = packKey(hash);
				const version = await this.writer.putFile(key, builder.file.path, size, "pack", lock, digests);
				stored = { key, version, size, blobs };
			} finally {
				// Stored or failed, the file is done with: the next pack may take its place.
				await builder.file.remove();
				this.#slots.release();
			}
			const { key, version, size, blobs } = stored;
			const entry: IndexPack = {
				key,
				...(version ? { version } : {}),
				size,
				mode: lock.mode,
				until: lock.until.toISOString(),
				blobs: blobs.map((b) => [b.type === "tree" ? 1 : 0, b.id, b.offset, b.length, b.rawLength]),
			};
			this.indexStore.queuePacks([entry]);
			const index = this.indexStore.index;
			index.addPack(entry, undefined);
			// Indexed now: the index answers for these blobs, so a run of many files does not keep a claim per blob.
			for (const blob of blobs) {
				const claim = this.#pending.get(blob.id);
				if (!claim || index.reusable(blob.id)?.packKey !== key) continue;
				this.#pending.delete(blob.id);
				claim.done();
			}
			this.writer.stats.packs++;
			if (this.indexStore.unindexedCount >= PACKS_PER_INDEX) await this.indexStore.writeIndex([]);
		});
	}
}
