import type { CatalogCache } from "../../catalog/catalog-cache.js";
import type { SourceEntry } from "../../source/source.js";
import { type FileState, fileState } from "../file-state.js";

/** States written to the catalog at once. */
const BATCH = 2000;

/**
 * File states go to the catalog in batches during the run, so memory does not grow with
 * the number of files. Safe before the snapshot exists: a state whose blobs are not in the
 * index when next read (a run that died) counts as changed.
 */
export class FileStateWriter {
	#batch: { key: string; value: FileState }[] = [];

	constructor(private readonly cache: CatalogCache) {}

	async remember(key: string, entry: SourceEntry, blobs: string[]): Promise<void> {
		this.#batch.push({ key, value: fileState(entry, blobs) });
		if (this.#batch.length >= BATCH) await this.flush();
	}

	async flush(): Promise<void> {
		const batch = this.#batch;
		this.#batch = [];
		if (batch.length > 0) await this.cache.setMany(batch);
	}
}
