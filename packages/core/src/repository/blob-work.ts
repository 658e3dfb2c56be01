import { createHash } from "node:crypto";
import { HoldfastError, isHoldfastError } from "../host/errors.js";
import { type BlobKeys, blobId, decodeBlob, decodeBlobInto, encodeBlob, encodeBlobInto } from "./blob-codec.js";
import { Chunker, type ChunkerParams } from "./chunker.js";
import type { BodyKind } from "./compression.js";
import { Scratch } from "./scratch.js";

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
	#zero: { readonly length: number; readonly id: string } | undefined;
	/** The blobs of the range last opened, back to back. */
	readonly #opened = new Scratch();
	/** A compressed body between compression and encryption, or between decryption and decompression. */
	readonly #bodies = new Scratch();

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
			// A run of zeros (a sparse file, a zeroed image) is cut and named without the gear loop or a hash.
			const zero = this.#zeroRunAt(rest);
			if (zero) {
				lengths.push(zero.length);
				ids.push(zero.id);
				at += zero.length;
				continue;
			}
			const length = this.#chunker.cut(rest, final);
			if (length <= 0) break;
			lengths.push(length);
			ids.push(blobId(this.keys, rest.subarray(0, length)));
			at += length;
		}
		return { lengths, ids };
	}

	/**
	 * The chunk of zeros `data` starts with, if it does. A chunk is longer than the minimum,
	 * so data without that many zeros first never pays for finding the zero chunk.
	 */
	#zeroRunAt(data: Uint8Array): { readonly length: number; readonly id: string } | undefined {
		const { min } = this.keys.chunker;
		if (data.length <= min || !isZero(data, min)) return undefined;
		const zero = this.#zeroChunk();
		return zero.length > 0 && data.length >= zero.length && isZero(data, zero.length) ? zero : undefined;
	}

	/**
	 * The chunk a long run of zeros starts with: the cut depends only on the bytes since the
	 * chunk's start, so every such chunk has the same length and ID, found once, when first needed.
	 */
	#zeroChunk(): { readonly length: number; readonly id: string } {
		if (!this.#zero) {
			// Zeroed memory is mapped lazily: reading it takes no pages of its own.
			const zeros = new Uint8Array(this.keys.chunker.max);
			const length = this.#chunker.cut(zeros, false);
			this.#zero = { length, id: blobId(this.keys, zeros.subarray(0, length)) };
		}
		return this.#zero;
	}

	/** Compresses and seals each region: the bytes as they go into a pack. */
	seal(data: Uint8Array, regions: Regions, compress: boolean, kind: BodyKind): Uint8Array[] {
		const sealed: Uint8Array[] = [];
		for (let i = 0; i < regions.length; i += 2) {
			sealed.push(
				encodeBlob(this.keys, data.subarray(regions[i], (regions[i] as number) + (regions[i + 1] as number)), compress, kind),
			);
		}
		return sealed;
	}

	/**
	 * Compresses and seals each region into `out` from `at`, back to back, where the pack
	 * keeps them: nothing comes back but their lengths.
	 */
	sealInto(data: Uint8Array, regions: Regions, compress: boolean, out: Uint8Array, at: number): Uint32Array {
		const lengths = new Uint32Array(regions.length / 2);
		for (let i = 0; i < regions.length; i += 2) {
			const start = regions[i] as number;
			const region = data.subarray(start, start + (regions[i + 1] as number));
			const length = encodeBlobInto(this.keys, region, compress, out, at, this.#bodies);
			lengths[i / 2] = length;
			at += length;
		}
		return lengths;
	}

	/**
	 * The IDs of the regions and each sealed into `out` from `at`, back to back, in one pass
	 * over the bytes: small files that are most likely new go to a worker once, not twice.
	 * The caller drops what turns out to be stored already.
	 */
	hashSealInto(data: Uint8Array, regions: Regions, compress: boolean, out: Uint8Array, at: number): HashSealed {
		return { ids: this.hash(data, regions), lengths: this.sealInto(data, regions, compress, out, at) };
	}

	/** SHA-256 of a whole pack: its name. */
	digest(data: Uint8Array): string {
		return createHash("sha256").update(data).digest("hex");
	}

	decode(sealed: Uint8Array, id: string, what: string): Uint8Array {
		return decodeBlob(this.keys, sealed, id, what);
	}

	/**
	 * The blobs at `regions` of `data` (a range of the pack `packKey`), each opened, verified
	 * against its ID and its length in the index: for a restore that writes them where they
	 * are. They are views into one buffer this thread keeps, valid until the next call. The
	 * first blob that does not verify fails the range; with `damaged`, it is left out (undefined
	 * in its place) and told there, and the others are opened.
	 */
	openRange(
		data: Uint8Array,
		regions: Regions,
		ids: readonly string[],
		packKey: string,
		rawLengths: Uint32Array,
		damaged?: (index: number, error: HoldfastError) => void,
	): (Uint8Array | undefined)[] {
		const blobs: (Uint8Array | undefined)[] = [];
		let total = 0;
		for (const length of rawLengths) total += length;
		// A range that opens to more (text that compressed a hundredfold, or a damaged index) takes a buffer per blob.
		this.#opened.trim(Math.max(KEPT_AT_MOST, total));
		const arena = total <= OPENED_AT_MOST ? this.#opened.take(total) : undefined;
		let into = 0;
		for (let i = 0; i < ids.length; i++) {
			const id = ids[i] as string;
			const start = regions[i * 2] as number;
			const rawLength = rawLengths[i] as number;
			const sealed = data.subarray(start, start + (regions[i * 2 + 1] as number));
			const what = blobWhat(id, packKey);
			try {
				if (arena) {
					const plain = arena.subarray(into, into + rawLength);
					into += rawLength;
					decodeBlobInto(this.keys, sealed, id, what, plain, this.#bodies);
					blobs.push(plain);
					continue;
				}
				const plain = decodeBlob(this.keys, sealed, id, what, rawLength);
				if (plain.length !== rawLength) {
					throw new HoldfastError("CORRUPT", `${what}: ${plain.length} bytes where the index says ${rawLength}`);
				}
				blobs.push(plain);
			} catch (error) {
				if (!damaged || !isHoldfastError(error, "CORRUPT")) throw error;
				damaged(i, error);
				blobs.push(undefined);
			}
		}
		this.#bodies.trim(KEPT_AT_MOST);
		return blobs;
	}
}

/** The most one range's blobs are opened into one kept buffer: far above a range of a few MiB of text that compressed tenfold. */
const OPENED_AT_MOST = 64 * 1024 * 1024;
/** A kept buffer grown past this is given back when the next range needs less. */
const KEPT_AT_MOST = 16 * 1024 * 1024;

const ZERO_PAGE = Buffer.alloc(64 * 1024);

/** Whether the first `length` bytes of `data` are all zero: a memcmp per block, stopping at the first difference. */
function isZero(data: Uint8Array, length: number): boolean {
	for (let at = 0; at < length; at += ZERO_PAGE.length) {
		const end = Math.min(length, at + ZERO_PAGE.length);
		if (Buffer.compare(ZERO_PAGE.subarray(0, end - at), data.subarray(at, end)) !== 0) return false;
	}
	return true;
}

/** Blob IDs and sealed lengths of regions sealed back to back. */
export interface HashSealed {
	readonly ids: string[];
	readonly lengths: Uint32Array;
}

/** How an error names a blob: its ID's start and its pack. */
export function blobWhat(id: string, packKey: string): string {
	return `blob ${id.slice(0, 16)} in ${packKey}`;
}
