import { type CatalogCache, type SealedPackedValue, type SealedValue, treeCacheKey } from "../../catalog/catalog-cache.js";

/** Trees written to the catalog at once, and the bytes (as kept, compressed) that also end a batch. */
const BATCH_TREES = 500;
const BATCH_BYTES = 4 * 1024 * 1024;

/**
 * The trees a backup stores go to the catalog as it writes them, in batches: the next run
 * walks this snapshot's trees to keep them protected, and finds each here instead of reading
 * its pack, opening it on a worker and caching it one write at a time.
 */
export class TreeCacheWriter {
	#batch: { key: string; value: SealedValue | SealedPackedValue }[] = [];
	#bytes = 0;

	constructor(
		private readonly cache: CatalogCache,
		private readonly repositoryId: string,
	) {}

	/** `json` is the tree's stored plaintext, which is its JSON: sealed (and compressed) now, so the batch holds what is written. */
	async remember(treeId: string, json: Uint8Array): Promise<void> {
		const key = treeCacheKey(this.repositoryId, treeId);
		const value = this.cache.sealJson(key, json);
		this.#batch.push({ key, value });
		this.#bytes += "z" in value ? value.z.length : value.j.length;
		if (this.#batch.length >= BATCH_TREES || this.#bytes >= BATCH_BYTES) await this.flush();
	}

	async flush(): Promise<void> {
		const batch = this.#batch;
		this.#batch = [];
		this.#bytes = 0;
		if (batch.length > 0) await this.cache.setManySealed(batch);
	}
}
