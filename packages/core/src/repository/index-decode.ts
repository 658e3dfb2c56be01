import { open } from "./blob-codec.js";
import { type PackedBlobs, type StoredPackedBlobs, storePackedBlobs } from "./blob-table.js";
import { decompress } from "./compression.js";
import { type IndexFile, type LoadedIndexFile, loadedIndexFile } from "./index-file.js";

// Opening one index object into the compact form the index merges: the same steps on a worker thread or, without one, inline.

/**
 * What is wanted of an index object besides its head: nothing, its blobs packed (to merge),
 * or packed and encoded for the catalog (to cache, without the main thread encoding them).
 */
export type IndexForm = "head" | "packed" | "stored";

/** An index object's head (its packs with blob counts, no entries) and each pack's blobs in the form asked for. */
export interface DecodedIndex {
	file: LoadedIndexFile;
	packed?: PackedBlobs[] | undefined;
	stored?: StoredPackedBlobs[] | undefined;
}

/** Decrypts, decompresses and parses a sealed index object (its name already verified). */
export function decodeIndexObject(encryption: Uint8Array, sealed: Uint8Array, key: string, form: IndexForm): DecodedIndex {
	const json = decompress(open(encryption, sealed, key), key).toString("utf8");
	return splitIndexFile(JSON.parse(json) as IndexFile, form);
}

/** The head of a verified index object apart from its blobs, so each can be cached and moved on its own. */
export function splitIndexFile(indexFile: IndexFile, form: IndexForm): DecodedIndex {
	const loaded = loadedIndexFile(indexFile, form !== "head");
	const file = { ...loaded, packs: loaded.packs.map((pack) => ({ ...pack, packed: undefined })) };
	if (form === "head") return { file };
	const packed = loaded.packs.map((pack) => pack.packed as PackedBlobs);
	return form === "packed" ? { file, packed } : { file, stored: packed.map(storePackedBlobs) };
}
