import type { BlobType } from "../../repository/format.js";
import type { Repository } from "../../repository/repository.js";
import type { BackupSummary } from "../run-types.js";
import type { Slab } from "./slab-pool.js";

/**
 * The dedup decision and the hand-off to packing. A blob is stored unless a copy locked
 * until `minLock` is indexed (or is being written this run); sealing runs on the pool's
 * threads while the caller goes on reading, and `drain` waits for every blob handed over.
 */
export class BlobSaver {
	/** Stored blobs the snapshot reuses: the lock step keeps them protected for its window. */
	readonly reused = new Set<string>();
	readonly #sealing = new Set<Promise<void>>();
	#failure: unknown;
	/** Recent small blobs found new and found stored, decayed: whether sealing before the dedup decision pays. */
	#recentNew = 0;
	#recentKnown = 0;

	constructor(
		private readonly repository: Repository,
		private readonly minLock: Date | undefined,
		private readonly summary: BackupSummary,
	) {}

	/** Records that the snapshot uses stored copies of these blobs. */
	noteReused(ids: readonly string[]): void {
		for (const id of ids) this.reused.add(id);
	}

	/**
	 * Decides for the blobs at `regions` of `slab` (IDs known) which to store, and hands those
	 * to the workers to seal; the slab is held until they are sealed.
	 */
	save(type: BlobType, slab: Slab, regions: Uint32Array, ids: readonly string[]): void {
		this.#throwIfFailed();
		const wanted: number[] = [];
		const wantedIds: string[] = [];
		for (let i = 0; i < ids.length; i++) {
			const id = ids[i] as string;
			const length = regions[2 * i + 1] as number;
			const claimed = this.repository.claimBlob(id, this.minLock);
			if (type === "data") this.#noteRecent(claimed);
			if (claimed) {
				wanted.push(regions[2 * i] as number, length);
				wantedIds.push(id);
				this.summary.blobs.new++;
				this.summary.bytes.added += length;
			} else {
				this.summary.blobs.reused++;
				this.noteReused([id]);
			}
		}
		if (wantedIds.length === 0) return;
		// Held until the sealed blobs are in a pack: the budget also bounds what waits for the uploader.
		slab.ref();
		const regionsToSeal = new Uint32Array(wanted);
		const task = (async () => {
			try {
				// Sealed by the workers where the pack keeps them: nothing sealed comes back to be copied.
				await this.repository.sealIntoPack(type, slab.bytes, regionsToSeal, wantedIds);
			} finally {
				slab.unref();
			}
		})().catch((error: unknown) => {
			this.#failure ??= error;
			for (const id of wantedIds) this.repository.releaseClaim(id);
		});
		this.#sealing.add(task);
		void task.finally(() => this.#sealing.delete(task));
	}

	/**
	 * Whether blobs whose IDs are not known yet should be sealed in the same trip that finds
	 * them: true while most recent ones turned out new (a first backup, new files); where many
	 * are stored already (files copied or moved), hashing first spares sealing copies to drop.
	 */
	get sealsBeforeDeciding(): boolean {
		return this.#recentKnown <= this.#recentNew;
	}

	/**
	 * Hashes the blobs at `regions` of `slab` and seals them into a pack in one trip to the
	 * workers, then keeps only those the dedup decision stores (the same decision as `save`);
	 * resolves to every region's ID. The slab is held until they are sealed.
	 */
	saveUnhashed(type: BlobType, slab: Slab, regions: Uint32Array): Promise<string[]> {
		this.#throwIfFailed();
		slab.ref();
		const decided = (id: string, length: number, added: boolean): void => {
			this.#noteRecent(added);
			if (added) {
				this.summary.blobs.new++;
				this.summary.bytes.added += length;
			} else {
				this.summary.blobs.reused++;
				this.reused.add(id);
			}
		};
		const ids = this.repository.hashSealIntoPack(type, slab.bytes, regions, this.minLock, decided).finally(() => slab.unref());
		const task = ids.then(
			() => undefined,
			(error: unknown) => {
				this.#failure ??= error;
			},
		);
		this.#sealing.add(task);
		void task.finally(() => this.#sealing.delete(task));
		return ids;
	}

	#noteRecent(isNew: boolean): void {
		if (isNew) this.#recentNew++;
		else this.#recentKnown++;
		// Halved now and then: what the last few thousand blobs were counts, not the whole run.
		if (this.#recentNew + this.#recentKnown >= 4096) {
			this.#recentNew /= 2;
			this.#recentKnown /= 2;
		}
	}

	/** A whole small blob (a tree): hashed, deduplicated and stored through the repository; `added` when stored now. */
	async saveWhole(type: BlobType, data: Uint8Array): Promise<{ id: string; added: boolean }> {
		const saved = await this.repository.saveBlob(type, data, this.minLock);
		if (!saved.added) this.noteReused([saved.id]);
		return saved;
	}

	/** Waits until every blob handed over is in a pack (or uploading). */
	async drain(): Promise<void> {
		while (this.#sealing.size > 0) await Promise.all([...this.#sealing]);
		this.#throwIfFailed();
	}

	#throwIfFailed(): void {
		if (this.#failure !== undefined) throw this.#failure;
	}
}
