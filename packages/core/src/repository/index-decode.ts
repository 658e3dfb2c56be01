import { open } from "./blob-codec.js";
import { encodePackedBlobs, type PackedBlobs } from "./blob-table.js";
import { decompress } from "./compression.js";
import { type IndexFile, type LoadedIndexFile, loadedIndexFile } from "./index-file.js";
import { scanIndexJson } from "./index-scan.js";

// Opening one index object into the compact form the index merges: the same steps on a worker thread or, without one, inline.

/**
 * What is wanted of an index object besides its head: nothing, its blobs packed (to merge),
 * or packed and encoded as the catalog value (to cache, without the main thread encoding them).
 */
export type IndexForm = "head" | "packed" | "stored";

/** An index object's head (its packs with blob counts, no entries) and its packs' blobs in the form asked for. */
export interface DecodedIndex {
	file: LoadedIndexFile;
	packed?: PackedBlobs[] | undefined;
	/** All packs' blobs as one catalog value (`encodePackedBlobs`). */
	stored?: Uint8Array | undefined;
	/** Set when the object took the general parse, which leaves an array and a string per blob behind. */
	parsed?: true;
}

/** Decrypts, decompresses and parses a sealed index object (its name already verified). */
export function decodeIndexObject(encryption: Uint8Array, sealed: Uint8Array, key: string, form: IndexForm): DecodedIndex {
	const text = decompress(open(encryption, sealed, key), key);
	// Objects as writers make them are scanned straight into arrays; anything else takes the general parse.
	const scanned = scanIndexJson(text);
	if (!scanned) return { ...splitIndexFile(JSON.parse(text.toString("utf8")) as IndexFile, form), parsed: true };
	const { file, packed } = scanned;
	const head = headOf(loadedIndexFile(file, false), packed);
	if (form === "head") return { file: head };
	return form === "packed" ? { file: head, packed } : { file: head, stored: encodePackedBlobs(packed) };
}

/** The head of a verified index object apart from its blobs, so each can be cached and moved on its own. */
export function splitIndexFile(indexFile: IndexFile, form: IndexForm): DecodedIndex {
	const loaded = loadedIndexFile(indexFile, form !== "head");
	const file = { ...loaded, packs: loaded.packs.map((pack) => ({ ...pack, packed: undefined })) };
	if (form === "head") return { file };
	const packed = loaded.packs.map((pack) => pack.packed as PackedBlobs);
	return form === "packed" ? { file, packed } : { file, stored: encodePackedBlobs(packed) };
}

/** A scanned head, whose packs' `blobs` were left empty: each pack's count is what the scan found. */
function headOf(loaded: LoadedIndexFile, packed: readonly PackedBlobs[]): LoadedIndexFile {
	return { ...loaded, packs: loaded.packs.map((pack, i) => ({ ...pack, blobCount: packed[i]?.count ?? 0 })) };
}
