import { type CatalogCache, isRecord, treeCacheKey } from "../catalog/catalog-cache.js";
import type { RangeFiles, RangeRestored } from "../engine/restore-range-work.js";
import { HoldfastError, isHoldfastError } from "../host/errors.js";
import type { BlobPool } from "./blob-pool.js";
import type { RepositoryKeys } from "./crypto.js";
import type { BlobLocation } from "./index-file.js";
import type { IndexStore } from "./index-store.js";
import type { ObjectReader } from "./object-reader.js";
import { readPackHeader } from "./pack.js";
import { parseTree, type Tree } from "./tree.js";

// Object reads: blobs, trees and packs out of the repository, each verified before anyone sees its bytes.

/** A blob to read from a pack: where it lies (sealed) and how long its plaintext is. */
export interface RangeBlob {
	readonly id: string;
	readonly offset: number;
	readonly length: number;
	readonly rawLength: number;
}

export interface BlobReaderParts {
	readonly reader: ObjectReader;
	readonly keys: RepositoryKeys;
	readonly pool: BlobPool;
	readonly cache: CatalogCache | undefined;
	readonly repositoryId: string;
	readonly indexStore: IndexStore;
}

/** Whole packs kept for restores that read several blobs of one pack. */
const PACKS_KEPT = 4;

export class BlobReader {
	readonly #packCache = new Map<string, Promise<Buffer>>();

	constructor(private readonly parts: BlobReaderParts) {}

	/** Reads, decrypts, decompresses and verifies one blob. */
	async loadBlob(id: string, options: { wholePack?: boolean } = {}): Promise<Buffer> {
		const { indexStore, reader } = this.parts;
		const location = indexStore.index.blobs.get(id) ?? (await indexStore.locateBlob(id));
		if (!location) throw new HoldfastError("NOT_FOUND", `blob ${id.slice(0, 16)} is in no pack of the index`);
		const what = `blob ${id.slice(0, 16)} in ${location.packKey}`;
		const verify = (sealed: Buffer) => this.decodeBlob(sealed, id, what);
		if (options.wholePack) {
			try {
				const pack = await this.loadPack(location.packKey);
				return await verify(pack.subarray(location.offset, location.offset + location.length));
			} catch (error) {
				// This installation cannot read the blob (no zstd): no other version reads better.
				if (isHoldfastError(error, "PLUGIN_LOAD")) throw error;
				// fall back to a ranged read, which tries every version of the pack
			}
		}
		return reader.readRange(location.packKey, { offset: location.offset, length: location.length }, verify);
	}

	/** A blob's sealed bytes from the pack the index places it in, verified (authentication and keyed ID). */
	async readSealedBlob(id: string, location: BlobLocation): Promise<Buffer> {
		const what = `blob ${id.slice(0, 16)} in ${location.packKey}`;
		return this.parts.reader.readRange(location.packKey, { offset: location.offset, length: location.length }, async (bytes) => {
			await this.decodeBlob(bytes, id, what);
			return bytes;
		});
	}

	/** A whole pack, verified against its name; a few recent packs are kept for restores. */
	async loadPack(key: string): Promise<Buffer> {
		let entry = this.#packCache.get(key);
		if (!entry) {
			entry = this.parts.reader.read(key, async (bytes) => bytes);
			this.#packCache.set(key, entry);
			entry.catch(() => this.#packCache.delete(key));
			while (this.#packCache.size > PACKS_KEPT) this.#packCache.delete(this.#packCache.keys().next().value as string);
		}
		return entry;
	}

	/**
	 * Blobs of one pack, sorted by offset, read with one ranged GET of the span they cover and
	 * opened on the pool's threads in one hand-off. Each blob's AEAD and keyed ID prove it: the
	 * pack as a whole is not hashed, and bytes between the blobs are never looked at. The files
	 * whose blobs all lie in the span are written by the thread that opened them; only the
	 * plaintexts `files.keep` asks for come back. With `spareDamaged`, a blob that does not verify
	 * costs only the files that need it (`RestoreRangeRequest.spareDamaged`).
	 */
	async restoreBlobRange(
		packKey: string,
		blobs: readonly RangeBlob[],
		files: RangeFiles,
		spareDamaged = false,
	): Promise<RangeRestored> {
		const { start, end, regions, ids } = spanOf(blobs);
		const rawLengths = Uint32Array.from(blobs, (blob) => blob.rawLength);
		return this.parts.reader.readRange(packKey, { offset: start, length: end - start }, async (bytes) => {
			if (bytes.length !== end - start) throw new HoldfastError("CORRUPT", `${packKey}: shorter than the index says`);
			return this.parts.pool.restoreRange({ data: bytes, regions, ids, rawLengths, packKey, files, spareDamaged });
		});
	}

	/** Decrypts, decompresses and verifies one sealed blob (on the pool's threads). */
	async decodeBlob(sealed: Uint8Array, id: string, what: string): Promise<Buffer> {
		const plain = await this.parts.pool.decode(sealed, id, what);
		return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
	}

	async loadTree(id: string): Promise<Tree> {
		const { cache } = this.parts;
		// Trees are immutable by ID; a cached one is trusted only when its MAC (keyed by this repository) verifies.
		const cacheKey = treeCacheKey(this.parts.repositoryId, id);
		const cached = await cache?.get(cacheKey, isTree);
		if (cached) return cached;
		const bytes = await this.loadBlob(id, { wholePack: true });
		const tree = parseTree(bytes);
		// Kept as stored, its JSON, compressed: not stringified again.
		await cache?.setManySealed([{ key: cacheKey, value: cache.sealJson(cacheKey, bytes) }]);
		return tree;
	}

	/** The blobs a pack's own header lists (recovery when no index object lists the pack). */
	async readPackBlobs(key: string, bytes: Buffer) {
		return readPackHeader(this.parts.keys, bytes, key);
	}
}

/** The span of a pack that blobs sorted by offset cover, and where each lies in it. */
function spanOf(blobs: readonly RangeBlob[]): { start: number; end: number; regions: Uint32Array; ids: string[] } {
	const start = blobs[0]?.offset ?? 0;
	const end = blobs.reduce((max, blob) => Math.max(max, blob.offset + blob.length), start);
	const regions = new Uint32Array(blobs.length * 2);
	blobs.forEach((blob, i) => {
		regions[i * 2] = blob.offset - start;
		regions[i * 2 + 1] = blob.length;
	});
	return { start, end, regions, ids: blobs.map((blob) => blob.id) };
}

function isTree(value: unknown): value is Tree {
	return isRecord(value) && Array.isArray(value.nodes);
}
