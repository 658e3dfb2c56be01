import { createHash } from "node:crypto";
import { type BlobKeys, blobId, decodeBlob, encodeBlob } from "./blob-codec.js";
import { Chunker, type ChunkerParams } from "./chunker.js";

/** What a worker of the blob pool needs to know: the blob keys and the chunker's seed and bounds. */
export interface WorkerKeys extends BlobKeys {
	readonly chunkerSeed: Uint8Array;
	readonly chunker: ChunkerParams;
}

/** Offsets and lengths of blobs inside one buffer, as pairs: [offset0, length0, offset1, …]. */
export type Regions = Uint32Array;

/** Chunks cut from the start of a buffer: their lengths and IDs, in order. */
export interface Cut {
	readonly lengths: number[];
	readonly ids: string[];
}

/**
 * The per-byte work of a backup — cut points, blob IDs, compression and encryption — the
 * same on a worker thread and inline (the unit tests run the sources, without workers).
 */
export class BlobWork {
	readonly #chunker: Chunker;

	constructor(readonly keys: WorkerKeys) {
		this.#chunker = new Chunker(keys.chunkerSeed, keys.chunker);
	}

	/** One blob per region (a small file): the IDs only, so the main thread can decide what to store. */
	hash(data: Uint8Array, regions: Regions): string[] {
		const ids: string[] = [];
		for (let i = 0; i < regions.length; i += 2) {
			ids.push(blobId(this.keys, data.subarray(regions[i], (regions[i] as number) + (regions[i + 1] as number))));
		}
		return ids;
	}

	/**
	 * Cuts `data` from its start. Without `final`, stops where no cut point lies in the bytes
	 * there are: a cut found in part of a stream is the cut the whole stream has.
	 */
	chunk(data: Uint8Array, final: boolean): Cut {
		const lengths: number[] = [];
		const ids: string[] = [];
		let at = 0;
		while (at < data.length) {
			const rest = data.subarray(at);
			const length = this.#chunker.cut(rest, final);
			if (length <= 0) break;
			lengths.push(length);
			ids.push(blobId(this.keys, rest.subarray(0, length)));
			at += length;
		}
		return { lengths, ids };
	}

	/** Compresses and seals each region: the bytes as they go into a pack. */
	seal(data: Uint8Array, regions: Regions, compress: boolean): Uint8Array[] {
		const sealed: Uint8Array[] = [];
		for (let i = 0; i < regions.length; i += 2) {
			sealed.push(
				encodeBlob(this.keys, data.subarray(regions[i], (regions[i] as number) + (regions[i + 1] as number)), compress),
			);
		}
		return sealed;
	}

	/** SHA-256 of a whole pack: its name. */
	digest(data: Uint8Array): string {
		return createHash("sha256").update(data).digest("hex");
	}

	decode(sealed: Uint8Array, id: string, what: string): Uint8Array {
		return decodeBlob(this.keys, sealed, id, what);
	}
}
