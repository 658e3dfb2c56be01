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

	constructor(
		private readonly cache: CatalogCache,
		private readonly repositoryId: string,
	) {}

	get #key(): string {
		return `index-keys:${this.repositoryId}`;
	}

	/** The index objects the catalog may hold values for; a missing or damaged record holds none. */
	async read(): Promise<Set<string>> {
		const stored = await this.cache.get(this.#key, isKeyList);
		this.#known = new Set(stored ?? []);
		return new Set(this.#known);
	}

	/** Records index objects whose values are about to be cached; a write only when one is new. */
	async add(indexKeys: Iterable<string>): Promise<void> {
		const known = this.#known ?? (await this.read());
		const added = [...indexKeys].filter((key) => !known.has(key));
		if (added.length === 0) return;
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
	}
}

function isKeyList(value: unknown): value is string[] {
	return Array.isArray(value) && value.every((key) => typeof key === "string" && key.startsWith("index/"));
}
