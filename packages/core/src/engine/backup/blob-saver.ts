import type { BlobType } from "../../repository/format.js";
import type { Repository } from "../../repository/repository.js";
import type { BackupSummary } from "../run-types.js";
import type { Slab } from "./byte-budget.js";

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
			if (this.repository.claimBlob(id, this.minLock)) {
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
