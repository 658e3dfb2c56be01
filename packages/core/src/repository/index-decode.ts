import { open } from "./blob-codec.js";
import type { PackedBlobs } from "./blob-table.js";
import { decompress } from "./compression.js";
import { type IndexFile, type LoadedIndexFile, loadedIndexFile } from "./index-file.js";

// Opening one index object into the compact form the index merges: the same steps on a worker thread or, without one, inline.

/** An index object's head (its packs with blob counts, no entries) and, when asked for, each pack's packed blobs. */
export interface DecodedIndex {
	file: LoadedIndexFile;
	packed?: PackedBlobs[] | undefined;
}

/** Decrypts, decompresses and parses a sealed index object (its name already verified), packing its blobs when `withBlobs`. */
export function decodeIndexObject(encryption: Uint8Array, sealed: Uint8Array, key: string, withBlobs: boolean): DecodedIndex {
	const json = decompress(open(encryption, sealed, key), key).toString("utf8");
	return splitIndexFile(JSON.parse(json) as IndexFile, withBlobs);
}

/** The head of a verified index object apart from its packed blobs, so each can be cached and moved on its own. */
export function splitIndexFile(indexFile: IndexFile, withBlobs: boolean): DecodedIndex {
	const loaded = loadedIndexFile(indexFile, withBlobs);
	const file = { ...loaded, packs: loaded.packs.map((pack) => ({ ...pack, packed: undefined })) };
	return withBlobs ? { file, packed: loaded.packs.map((pack) => pack.packed as PackedBlobs) } : { file };
}
