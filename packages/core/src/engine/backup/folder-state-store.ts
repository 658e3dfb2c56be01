import type { CatalogCache } from "../../catalog/catalog-cache.js";
import { type FolderStates, readFolderStates } from "../file-state.js";

/** File states written to the catalog at once (a batch ends after the folder that reaches it). */
const BATCH_FILES = 2000;

/**
 * Folders' file states, looked up a batch of folders at a time, and written to the catalog
 * in batches during the run, so memory does not grow with the number of files. Safe before
 * the snapshot exists: a state whose blobs are not in the index when next read (a run that
 * died) counts as changed.
 */
export class FolderStateStore {
	#batch: { key: string; value: FolderStates }[] = [];
	#files = 0;

	constructor(private readonly cache: CatalogCache) {}

	/** What the last run left for each folder, in one catalog call. */
	recall(keys: readonly string[]): Promise<(FolderStates | undefined)[]> {
		return readFolderStates(this.cache, keys);
	}

	/** `files` is how many states the folder holds. */
	async remember(key: string, value: FolderStates, files: number): Promise<void> {
		this.#batch.push({ key, value });
		this.#files += files;
		if (this.#files >= BATCH_FILES) await this.flush();
	}

	async flush(): Promise<void> {
		const batch = this.#batch;
		this.#batch = [];
		this.#files = 0;
		if (batch.length > 0) await this.cache.setMany(batch);
	}

	/**
	 * The snapshot whose walk left the catalog's states (written as a run ends): when it is the
	 * run's parent, a folder the catalog has nothing of is new, and the parent's trees need not be
	 * asked. Any other answer (none, another snapshot: a catalog deleted, started anew, or left
	 * behind by runs made with another) means the states may lack what the parent has.
	 */
	statesOf(repositoryId: string, setName: string): Promise<string | undefined> {
		return this.cache.get(statesOfKey(repositoryId, setName), (value): value is string => typeof value === "string");
	}

	async setStatesOf(repositoryId: string, setName: string, snapshotId: string): Promise<void> {
		await this.cache.set(statesOfKey(repositoryId, setName), snapshotId);
	}

	/**
	 * Drops the states an earlier layout kept a file to a value (`file:`): never read again,
	 * they would stay in the catalog for good. Cheap once gone: a range of the catalog's keys.
	 */
	async dropFileLayout(repositoryId: string, setName: string): Promise<void> {
		const stale = await this.cache.keysStartingWith(`file:${repositoryId}:${setName}:`);
		if (stale && stale.length > 0) await this.cache.delete(stale);
	}
}

function statesOfKey(repositoryId: string, setName: string): string {
	return `states-of:${repositoryId}:${setName}`;
}
