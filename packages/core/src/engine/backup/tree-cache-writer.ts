import { type CatalogCache, treeCacheKey } from "../../catalog/catalog-cache.js";

/** Trees written to the catalog at once, and the JSON bytes that also end a batch. */
const BATCH_TREES = 500;
const BATCH_BYTES = 4 * 1024 * 1024;

/**
 * The trees a backup stores go to the catalog as it writes them, in batches: the next run
 * walks this snapshot's trees to keep them protected, and finds each here instead of reading
 * its pack, opening it on a worker and caching it one write at a time.
 */
export class TreeCacheWriter {
	#batch: { key: string; json: string }[] = [];
	#bytes = 0;

	constructor(
		private readonly cache: CatalogCache,
		private readonly repositoryId: string,
	) {}

	/** `json` is the tree's stored plaintext, which is its JSON. */
	async remember(treeId: string, json: string): Promise<void> {
		this.#batch.push({ key: treeCacheKey(this.repositoryId, treeId), json });
		this.#bytes += json.length;
		if (this.#batch.length >= BATCH_TREES || this.#bytes >= BATCH_BYTES) await this.flush();
	}

	async flush(): Promise<void> {
		const batch = this.#batch;
		this.#batch = [];
		this.#bytes = 0;
		if (batch.length > 0) await this.cache.setManyJson(batch);
	}
}
