import type { CatalogCache } from "./catalog-cache.js";

// Which index objects of a repository the catalog may hold values for, so the index load can drop those the repository no longer holds.

/** The catalog keys an index object of `repositoryId` is cached under: its head, its packed blobs, and a full copy. */
export function indexObjectCacheKeys(repositoryId: string, indexKey: string): string[] {
	return [
		`index-head:${repositoryId}:${indexKey}`,
		`index-blobs:${repositoryId}:${indexKey}`,
		`index:${repositoryId}:${indexKey}`,
	];
}

/**
 * One sealed value, `index-keys:<repository>`, naming every index object the catalog may hold
 * values for. A key joins it before any of its values is written, so no value outlives the
 * record's knowledge of it; it leaves only after its values are deleted. The record is re-read
 * before each write: another process sharing the catalog may have added keys meanwhile.
 */
export class CachedIndexKeys {
	/** The record as this process last read or wrote it; undefined until first read. */
	#known: Set<string> | undefined;
	/** Whether the catalog holds a record that verified at the last read. */
	#stored = false;

	constructor(
		private readonly cache: CatalogCache,
		private readonly repositoryId: string,
	) {}

	get #key(): string {
		return `index-keys:${this.repositoryId}`;
	}

	/**
	 * The index objects the catalog may hold values for. Without a record (a catalog written
	 * before there was one, or a damaged record), the index objects whose values the store can list.
	 */
	async read(): Promise<Set<string>> {
		const stored = await this.cache.get(this.#key, isKeyList, { remember: true });
		this.#stored = stored !== undefined;
		this.#known = new Set(stored ?? (await this.#listCached()));
		return new Set(this.#known);
	}

	/** Records index objects whose values are about to be cached; a write only when one is new. */
	async add(indexKeys: Iterable<string>): Promise<void> {
		const known = this.#known ?? (await this.read());
		const added = [...indexKeys].filter((key) => !known.has(key));
		if (added.length === 0 && this.#stored) return;
		await this.#write(await this.read(), added, []);
	}

	/** Deletes every cached value of index objects the repository no longer holds, then drops them from the record. */
	async forget(gone: readonly string[]): Promise<void> {
		if (gone.length === 0) return;
		await this.cache.delete(gone.flatMap((key) => indexObjectCacheKeys(this.repositoryId, key)));
		await this.#write(await this.read(), [], gone);
	}

	async #write(record: Set<string>, added: readonly string[], removed: readonly string[]): Promise<void> {
		for (const key of added) record.add(key);
		for (const key of removed) record.delete(key);
		await this.cache.set(this.#key, [...record].sort());
		this.#known = record;
		this.#stored = true;
	}

	/** Index objects with a head or a full copy in the catalog, where the store lists keys; none elsewhere. */
	async #listCached(): Promise<string[]> {
		const found: string[] = [];
		for (const kind of ["index-head", "index"]) {
			const prefix = `${kind}:${this.repositoryId}:`;
			for (const key of (await this.cache.keysStartingWith(prefix)) ?? []) found.push(key.slice(prefix.length));
		}
		return found.filter((key) => key.startsWith("index/"));
	}
}

function isKeyList(value: unknown): value is string[] {
	return Array.isArray(value) && value.every((key) => typeof key === "string" && key.startsWith("index/"));
}
