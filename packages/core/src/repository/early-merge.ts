import { decodePackedBlobs } from "./blob-table.js";
import type { DecodedIndex } from "./index-decode.js";
import type { LoadedIndexFile, MasterIndex } from "./index-file.js";

// Merging index objects while a cold load still decodes them, as long as they come oldest first.

/** Fewest blobs an object must hold for its bytes a blob to size the whole table. */
const SAMPLE_BLOBS = 1000;

/**
 * Index objects merge oldest first (`created`, then key). A cold load decodes them in the
 * order they were first written, which is almost always that order: each is merged as soon as
 * it and all before it are decoded, straight from the decoded bytes, instead of being read back
 * from the catalog after every head is known. The first object that would merge before one
 * already merged, or whose head came from the catalog (a warm load gains nothing here), ends
 * it; the load then merges everything again in order, so the result is the same either way.
 */
export class EarlyMerge {
	readonly merged: LoadedIndexFile[] = [];
	readonly #arrived = new Map<number, { key: string; head: DecodedIndex | undefined }>();
	#next = 0;
	#last: { created: string; key: string } | undefined;
	#broken = false;
	#reserved = false;

	constructor(
		private readonly index: MasterIndex,
		/** Each index object's size as listed: with one object's blobs a byte, what to reserve for all. */
		private readonly sizes: ReadonlyMap<string, number>,
	) {}

	/** Object number `at` (in reading order) has been read: undefined when it was skipped. */
	arrived(at: number, key: string, head: DecodedIndex | undefined): void {
		if (this.#broken) return;
		this.#arrived.set(at, { key, head });
		this.#drain();
	}

	/** Whether all `count` objects merged in order; false leaves the index to be merged again. */
	done(count: number): boolean {
		return !this.#broken && this.#next === count;
	}

	#drain(): void {
		for (let item = this.#arrived.get(this.#next); item && !this.#broken; item = this.#arrived.get(this.#next)) {
			this.#arrived.delete(this.#next);
			this.#next++;
			const { key, head } = item;
			// Skipped (unreadable): the merge in order skips it too.
			if (!head) continue;
			const { file } = head;
			const last = this.#last;
			const counts = file.packs.map((pack) => pack.blobCount);
			const packed = head.packed ?? (head.stored && decodePackedBlobs(head.stored, counts));
			// The comparison the merge in order sorts by, so "in order" means the same to both.
			if (!packed || (last && (file.created.localeCompare(last.created) || key.localeCompare(last.key)) < 0)) {
				this.#stop();
				return;
			}
			this.#last = { created: file.created, key };
			this.#reserve(key, counts);
			this.index.add(key, { ...file, packs: file.packs.map((pack, i) => ({ ...pack, packed: packed[i] })) });
			this.merged.push(file);
		}
	}

	/** Sizes the table once, from the first object with enough blobs: growing it later would hold it twice. */
	#reserve(key: string, counts: readonly number[]): void {
		if (this.#reserved) return;
		const blobs = counts.reduce((sum, n) => sum + n, 0);
		const size = this.sizes.get(key);
		if (blobs < SAMPLE_BLOBS || !size) return;
		this.#reserved = true;
		let total = 0;
		for (const bytes of this.sizes.values()) total += bytes;
		this.index.blobs.reserve(Math.ceil((total * blobs) / size));
	}

	#stop(): void {
		this.#broken = true;
		this.#arrived.clear();
	}
}
