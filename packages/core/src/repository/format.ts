/** Format 1 of the repository; FORMAT.md at the project root is the prose version of this file. */
export const FORMAT_VERSION = 1;

export const KEY_PREFIX = Object.freeze({
	config: "config/",
	keys: "keys/",
	data: "data/",
	index: "index/",
	snapshots: "snapshots/",
});

export const BLOB_TYPE = Object.freeze({ data: 0, tree: 1 });
export type BlobType = "data" | "tree";

export const CHUNKER_DEFAULTS = Object.freeze({ min: 512 * 1024, avg: 1024 * 1024, max: 8 * 1024 * 1024 });

export function packKey(hash: string): string {
	return `${KEY_PREFIX.data}${hash.slice(0, 2)}/${hash}`;
}

const OBJECT_KEY = /^(data\/([0-9a-f]{2})\/\2[0-9a-f]{62}|(index|snapshots|keys|config)\/[0-9a-f]{64})$/;

/**
 * True for a key exactly as this format writes it. What else a listing of its prefixes finds
 * is not this repository's: another repository nested under a prefix of the same bucket
 * (`data/config/…`), a user's file. It is never read as a snapshot or key, never counted as
 * reclaimable, and never groomed.
 */
export function isRepositoryObjectKey(key: string): boolean {
	return OBJECT_KEY.test(key);
}

/** The hash a content-addressed key names (its last path segment); every key of format 1 has one. */
export function hashOfKey(key: string): string | undefined {
	const last = key.slice(key.lastIndexOf("/") + 1);
	return /^[0-9a-f]{64}$/.test(last) ? last : undefined;
}
