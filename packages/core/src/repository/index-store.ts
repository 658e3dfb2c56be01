import { CachedIndexKeys } from "../catalog/cached-index-keys.js";
import { type CatalogCache, isRecord } from "../catalog/catalog-cache.js";
import type { Destination } from "../destination/destination.js";
import { classifyFault } from "../destination/faults.js";
import type { Clock } from "../host/clock.js";
import { describeError } from "../host/errors.js";
import type { Logger } from "../host/logger.js";
import { concurrencyLimit } from "../host/semaphore.js";
import { decodePackedBlobs, encodePackedBlobs, type PackedBlobs } from "./blob-table.js";
import { compressPieces } from "./compression.js";
import { type RepositoryKeys, sha256Hex } from "./crypto.js";
import { EarlyMerge } from "./early-merge.js";
import { KEY_PREFIX } from "./format.js";
import { type DecodedIndex, type IndexForm, splitIndexFile } from "./index-decode.js";
import { IndexDecoder } from "./index-decoder.js";
import {
	type BlobLocation,
	type CondemnedObject,
	type IndexFile,
	type IndexLock,
	type IndexPack,
	isCarrier,
	type LoadedIndexFile,
	MasterIndex,
} from "./index-file.js";
import { describeRecovery, type PackHeaderRecovery, recoverFromPackHeaders, uncoveredIndexes } from "./index-recovery.js";
import { openJson } from "./key-store.js";
import type { ObjectReader } from "./object-reader.js";
import { realVersions } from "./object-versions.js";
import type { ObjectWriter } from "./object-writer.js";
import type { UnreadableObject } from "./snapshot.js";

// The index reader/writer: merges every index object into the master index, and writes the packs and locks of this run into new ones.

/** What an index object records beside packs and locks: grooming's tombstones and marks, a repair's stand-ins. */
export interface IndexExtras {
	deleted?: string[];
	forgotten?: string[];
	rebuilt?: string[];
	condemned?: CondemnedObject[];
}

export interface IndexStoreParts {
	readonly destination: Destination;
	readonly reader: ObjectReader;
	readonly keys: RepositoryKeys;
	readonly cache: CatalogCache | undefined;
	readonly repositoryId: string;
	readonly clock: Clock;
	readonly logger: Logger;
	readonly writer: ObjectWriter;
	/** Config copies and key files that opened: an index that records none of them still knows they exist. */
	readonly metadataKeys: () => readonly string[];
}

export class IndexStore {
	/** Replaced whole by `loadIndex`, so each run sees what other hosts and grooming did since. */
	index = new MasterIndex();
	/** Index objects the last `loadIndex` could not read: what they record is unknown, so grooming stops. */
	unreadableIndex: UnreadableObject[] = [];
	/** Packs uploaded (or relisted) that no index object written by this process lists yet. */
	#unindexed: IndexPack[] = [];
	/** Index objects that verified under no version at the last load. */
	#unreadableIndexes: string[] = [];
	/** Those of them no readable index object says it rebuilt: packs only they listed are unknown. */
	#uncoveredIndexes: string[] = [];
	/** The pack-header fallback of the current index load: run at most once, and only when needed. */
	#headerRecovery: Promise<PackHeaderRecovery> | undefined;

	readonly #decoder: IndexDecoder;
	/** Which index objects the catalog holds values for: those of objects gone from `index/` are dropped. */
	readonly #cachedKeys: CachedIndexKeys | undefined;
	/**
	 * Index objects read, opened and cached at once on a cold load: one more than the decoder's
	 * thread keeps it busy; more would only hold more decoded objects (MiBs each) in memory.
	 */
	readonly #coldReads = concurrencyLimit(2);

	constructor(private readonly parts: IndexStoreParts) {
		this.#decoder = new IndexDecoder(parts.keys.raw.encryption);
		this.#cachedKeys = parts.cache && new CachedIndexKeys(parts.cache, parts.repositoryId);
	}

	get unreadableIndexes(): readonly string[] {
		return this.#unreadableIndexes;
	}

	get uncoveredIndexes(): readonly string[] {
		return this.#uncoveredIndexes;
	}

	/** The pack-header fallback's result when it ran for the current index load. */
	get headerRecovery(): Promise<PackHeaderRecovery> | undefined {
		return this.#headerRecovery;
	}

	/** Packs waiting for an index object. */
	get unindexedCount(): number {
		return this.#unindexed.length;
	}

	/** Packs the next index object lists. */
	queuePacks(packs: readonly IndexPack[]): void {
		this.#unindexed.push(...packs);
	}

	/**
	 * Lists `index/` and merges every index object; verified content is cached in the catalog.
	 * `blobs: false` (for commands that read no blob, such as listing snapshots) skips the
	 * blob locations, by far the largest part of a large index.
	 */
	async loadIndex(options: { blobs?: boolean } = {}): Promise<void> {
		try {
			await this.#loadIndex(options.blobs ?? true);
		} finally {
			await this.#decoder.close();
		}
	}

	async #loadIndex(withBlobs: boolean): Promise<void> {
		const { destination, logger } = this.parts;
		// Built aside and swapped in whole: a read still in flight never sees (or recovers against) a half-merged index.
		let index = new MasterIndex({ withBlobs });
		// Read before listing: a key recorded by then yet missing from the whole listing was deleted.
		const recorded = await this.#cachedKeys?.read();
		// One listing: the keys, when each was first written and how large it is.
		const versions = await realVersions(destination, KEY_PREFIX.index);
		const written = new Map<string, number>();
		const sizes = new Map<string, number>();
		for (const { key, lastModified, size } of versions) {
			const time = lastModified.getTime();
			if (!written.has(key) || time < (written.get(key) as number)) written.set(key, time);
			sizes.set(key, Math.max(size, sizes.get(key) ?? 0));
		}
		const keys = [...written.keys()].sort();
		await this.#cachedKeys?.add(keys);
		const limit = concurrencyLimit(8);
		const failures = new Map<string, string>();
		const reasons = new Map<string, string>();
		// Damaged, or garbage under a name of its own (an attacker can add objects): noted, skipped.
		const skip = (key: string) => (error: unknown) => {
			// A store that did not answer: going on with part of the index would be guessing.
			if (classifyFault(error) === "unreachable") throw error;
			const message = (error as Error).message;
			failures.set(key, message.startsWith(key) ? message : `${key}: ${message}`);
			reasons.set(key, reasonOf(error, key));
			return undefined;
		};
		// Read in the order objects were first written, usually the order they merge in: each is
		// merged as it comes while that holds, so its blobs are not read back from the catalog.
		const reading = [...keys].sort((a, b) => (written.get(a) as number) - (written.get(b) as number) || a.localeCompare(b));
		let early = withBlobs ? new EarlyMerge(index, sizes) : undefined;
		const heads = await Promise.all(
			reading.map((key, i) =>
				limit(async () => {
					const head = await this.#readIndexHead(key, withBlobs).catch(skip(key));
					early?.arrived(i, key, head);
					// Without a catalog the packed blobs stay for a merge from the start: there is nowhere to read them again cheaply.
					return head && (this.parts.cache ? { file: head.file } : head);
				}),
			),
		);
		// The thread's heap goes before a table is built again; a value read again later starts a new one.
		await this.#decoder.close();
		const merged: LoadedIndexFile[] = [];
		if (early?.done(reading.length)) {
			merged.push(...early.merged);
		} else {
			// Its table goes before the new one is built.
			early = undefined;
			// Out of order: merged again from the start, oldest first, so tombstones from grooming apply after what they remove.
			index = new MasterIndex({ withBlobs });
			const ordered = reading.flatMap((key, i) => (heads[i] ? [{ key, ...(heads[i] as DecodedIndex) }] : []));
			heads.length = 0;
			ordered.sort((a, b) => a.file.created.localeCompare(b.file.created) || a.key.localeCompare(b.key));
			if (withBlobs)
				index.blobs.reserve(ordered.reduce((sum, { file }) => sum + file.packs.reduce((n, p) => n + p.blobCount, 0), 0));
			for (const entry of ordered) {
				let file = entry.file;
				if (withBlobs) {
					// Then the blobs, one index object at a time: only the merged table stays in memory.
					const packed = entry.packed ?? (await this.#readPackedBlobs(entry.key, file).catch(skip(entry.key)));
					entry.packed = undefined;
					if (!packed) continue;
					file = { ...file, packs: file.packs.map((pack, i) => ({ ...pack, packed: packed[i] })) };
				}
				index.add(entry.key, file);
				merged.push(entry.file);
			}
		}
		// Metadata no index recorded (an interrupted init): its lock is learned when first extended.
		for (const key of this.parts.metadataKeys()) if (!index.locks.has(key)) index.noteLock(key, "compliance", new Date(0));
		this.index = index;
		this.#headerRecovery = undefined;
		// Only now, the listing whole and the load done: a load that failed deletes nothing.
		if (recorded) {
			const listed = new Set(keys);
			// A cache that could not be trimmed is trimmed by a later load; this one has what it needs.
			await this.#cachedKeys?.forget([...recorded].filter((key) => !listed.has(key))).catch(() => undefined);
		}
		this.#unreadableIndexes = [...failures.keys()].sort();
		this.#uncoveredIndexes = uncoveredIndexes(this.#unreadableIndexes, merged);
		// What grooming must not decide without: index objects unreadable and not stood for by a rebuilt one.
		this.unreadableIndex = this.#uncoveredIndexes.map((key) => ({
			key,
			id: key.slice(KEY_PREFIX.index.length),
			reason: reasons.get(key) ?? "unreadable",
		}));
		for (const [key, message] of failures) {
			// Garbage or damage under an index name: skipped; once `repair index` relisted its packs, only a debug line.
			if (this.#uncoveredIndexes.includes(key)) logger.warn(message);
			else logger.debug(`${message} (its packs are relisted by a rebuilt index object)`);
		}
		if (this.#uncoveredIndexes.length > 0) await this.recoverUnlistedPacks().catch(() => undefined);
	}

	/**
	 * Adds to the index every pack in `data/` that no readable index object lists, rebuilt from
	 * the pack's own header. Lists `data/` (billed), so it runs only when an index object is
	 * unreadable or a blob is missing, once per index load.
	 */
	recoverUnlistedPacks(): Promise<PackHeaderRecovery> {
		if (this.#headerRecovery) return this.#headerRecovery;
		const index = this.index;
		const running = recoverFromPackHeaders(
			this.parts.destination,
			this.parts.keys,
			(key) => index.packs.has(key) || index.deleted.has(key),
		).then((found) => {
			for (const pack of found.packs) index.addPack(pack, undefined);
			const line = describeRecovery(found);
			if (line) this.parts.logger.warn(line);
			return found;
		});
		this.#headerRecovery = running;
		// A failed listing (the network) may be retried by the next caller.
		running.catch((error: unknown) => {
			if (this.#headerRecovery === running) this.#headerRecovery = undefined;
			this.parts.logger.warn(`recovering packs from their headers failed: ${(error as Error).message}`);
		});
		return running;
	}

	/** Where a blob is: the index, else (once per load) the headers of packs no readable index object lists. */
	async locateBlob(id: string): Promise<BlobLocation | undefined> {
		const known = this.index.blobs.get(id);
		if (known) return known;
		await this.recoverUnlistedPacks().catch(() => undefined);
		return this.index.blobs.get(id);
	}

	/** One index object, verified (from the catalog when it was read before). */
	async readIndexFile(key: string, options: { keep?: boolean } = {}): Promise<IndexFile> {
		const { cache, keys } = this.parts;
		const cacheKey = `index:${this.parts.repositoryId}:${key}`;
		const cached = await cache?.get(cacheKey, isIndexFile);
		if (cached) return cached;
		const file = await this.parts.reader.read(key, async (bytes) => openJson<IndexFile>(keys, bytes, key));
		// `keep: false` when the caller caches the object in its own form.
		if (options.keep !== false && cache) {
			await this.#cachedKeys?.add([key]);
			await cache.set(cacheKey, file);
		}
		return file;
	}

	/** Writes an index object for packs not yet indexed plus the given lock records. */
	async writeIndex(locks: IndexLock[], extra: IndexExtras = {}): Promise<string | undefined> {
		const { writer } = this.parts;
		const packs = this.#unindexed;
		this.#unindexed = [];
		const recorded = writer.takeUnrecorded().map((key): IndexLock => {
			const lock = this.index.locks.get(key);
			const version = this.index.versions.get(key);
			return {
				key,
				mode: lock?.mode ?? "compliance",
				until: (lock?.until ?? new Date(0)).toISOString(),
				...(version ? { version } : {}),
			};
		});
		locks = [...recorded, ...locks];
		if (packs.length === 0 && locks.length === 0 && !extra.deleted && !extra.forgotten && !extra.rebuilt && !extra.condemned)
			return undefined;
		const lock = writer.requireLock();
		const file: IndexFile = {
			v: 1,
			created: this.parts.clock.now().toISOString(),
			packs,
			locks,
			self: { mode: lock.mode, until: lock.until.toISOString() },
			...(extra.deleted ? { deleted: extra.deleted } : {}),
			...(extra.forgotten ? { forgotten: extra.forgotten } : {}),
			...(extra.rebuilt ? { rebuilt: extra.rebuilt } : {}),
			...(extra.condemned ? { condemned: extra.condemned } : {}),
		};
		const sealed = this.parts.keys.seal(await compressPieces(indexJsonPieces(file)));
		const key = `${KEY_PREFIX.index}${sha256Hex(sealed)}`;
		await writer.put(key, sealed, "index");
		for (const pack of packs) {
			const known = this.index.packs.get(pack.key);
			if (known) known.indexKey = key;
		}
		this.index.noteLock(key, lock.mode, lock.until);
		this.index.indexKeys.add(key);
		for (const l of locks) this.index.noteLock(l.key, l.mode, new Date(l.until));
		this.index.listed.set(
			key,
			packs.map((p) => p.key),
		);
		if (isCarrier(file)) this.index.noteCarrier(key, file.created, file.condemned ?? []);
		for (const d of extra.deleted ?? []) this.index.deleted.add(d);
		for (const f of extra.forgotten ?? []) this.index.forgotten.add(f);
		if (this.parts.cache) await this.#cacheIndexFile(key, file);
		return key;
	}

	/** Writes an index object listing packs rebuilt from their headers, naming the unreadable index objects it stands for. */
	async writeRebuiltIndex(packs: readonly IndexPack[], rebuilt: readonly string[]): Promise<string | undefined> {
		this.#unindexed.push(...packs);
		return this.writeIndex([], rebuilt.length > 0 ? { rebuilt: [...rebuilt] } : {});
	}

	/**
	 * Lists packs again in the next index object: for packs locked long enough whose index
	 * object's lock ends first, on stores that cannot extend that lock.
	 */
	relistPacks(keys: readonly string[]): void {
		const wanted = new Set(keys);
		const entries = new Map<string, IndexPack>();
		for (const [id, location] of this.index.blobs.inPacks(wanted)) {
			if (!wanted.has(location.packKey)) continue;
			let entry = entries.get(location.packKey);
			if (!entry) {
				const lock = this.index.locks.get(location.packKey);
				const version = this.index.versions.get(location.packKey);
				entry = {
					key: location.packKey,
					...(version ? { version } : {}),
					size: this.index.packs.get(location.packKey)?.size ?? 0,
					mode: lock?.mode ?? "compliance",
					until: (lock?.until ?? new Date(0)).toISOString(),
					blobs: [],
				};
				entries.set(location.packKey, entry);
			}
			entry.blobs.push([location.type === "tree" ? 1 : 0, id, location.offset, location.length, location.rawLength]);
		}
		this.#unindexed.push(...entries.values());
	}

	/**
	 * The head of one index object: all but its blob entries, each pack with its blob count.
	 * The catalog keeps an index object in two sealed values, this head and the blobs as bytes
	 * (`#readPackedBlobs`), so a load without blobs reads a few bytes a pack and a load with
	 * them parses nothing per blob. Read from the destination, the packed blobs come along
	 * when there is no catalog to read them from later.
	 */
	async #readIndexHead(key: string, withBlobs: boolean): Promise<DecodedIndex> {
		const { cache } = this.parts;
		const head = await cache?.get(`index-head:${this.parts.repositoryId}:${key}`, isLoadedHead, { remember: true });
		if (head) return { file: head };
		return this.#coldReads(async () => {
			if (!cache) return this.#decodeIndexObject(key, withBlobs ? "packed" : "head");
			// The threads encode the blobs for the catalog, where the next load reads them.
			const { file, stored } = await this.#decodeIndexObject(key, "stored");
			await this.#cacheDecoded(key, file, stored as Uint8Array);
			// The value stays with the head: merged as it comes, it is not read back.
			return { file, stored };
		});
	}

	/** One index object in the form asked for: from a cached full copy, else read and opened on the decoder's threads. */
	async #decodeIndexObject(key: string, form: IndexForm): Promise<DecodedIndex> {
		const cached = await this.parts.cache?.get(`index:${this.parts.repositoryId}:${key}`, isIndexFile);
		if (cached) return splitIndexFile(cached, form);
		return this.parts.reader.read(key, (bytes) => this.#decoder.decode(bytes, key, form));
	}

	/** Caches a verified index object (read, or written by this run) in the form `loadIndex` reads. */
	async #cacheIndexFile(key: string, indexFile: IndexFile): Promise<void> {
		const { file, stored } = splitIndexFile(indexFile, "stored");
		await this.#cacheDecoded(key, file, stored as Uint8Array);
	}

	async #cacheDecoded(key: string, file: LoadedIndexFile, stored: Uint8Array): Promise<void> {
		await this.#cachedKeys?.add([key]);
		// The blobs first: a head found in the catalog promises its blobs are there too (or re-reads them).
		await this.parts.cache?.setBytes(`index-blobs:${this.parts.repositoryId}:${key}`, stored);
		await this.parts.cache?.set(`index-head:${this.parts.repositoryId}:${key}`, file);
	}

	/** The packed blobs of each pack `head` lists: from the catalog, else from the object again. */
	async #readPackedBlobs(key: string, head: LoadedIndexFile): Promise<PackedBlobs[]> {
		const { cache } = this.parts;
		const blobsKey = `index-blobs:${this.parts.repositoryId}:${key}`;
		const stored = await cache?.getBytes(blobsKey, { remember: true });
		const packed = stored
			? decodePackedBlobs(
					stored,
					head.packs.map((pack) => pack.blobCount),
				)
			: undefined;
		if (packed) return packed;
		const again = (await this.#decodeIndexObject(key, "packed")).packed as PackedBlobs[];
		await this.#cachedKeys?.add([key]);
		await cache?.setBytes(blobsKey, encodePackedBlobs(again));
		return again;
	}
}

/** Why `key` could not be read, in one line that does not repeat the key. */
export function reasonOf(error: unknown, key: string): string {
	const line = describeError(error);
	return line.startsWith(`${key}: `) ? line.slice(key.length + 2) : line;
}

/** Shapes a verified cached value must still have: a layout change without a tag change is a miss. */
function isLoadedHead(value: unknown): value is LoadedIndexFile {
	return (
		isIndexFile(value) &&
		value.packs.every((pack) => isRecord(pack) && typeof pack.key === "string" && typeof pack.blobCount === "number")
	);
}

function isIndexFile(value: unknown): value is IndexFile & Record<string, unknown> {
	return isRecord(value) && value.v === 1 && typeof value.created === "string" && Array.isArray(value.packs);
}

/**
 * The text `JSON.stringify(file)` gives, a pack at a time. Its packs' blob lists are nearly all
 * of an index object: whole, a 50,000-file backup's was 7.5 MB of text and as much again as
 * bytes, at the end of the run where its memory peaks.
 */
export function* indexJsonPieces(file: IndexFile): Generator<string> {
	const fields = Object.entries(file);
	const at = fields.findIndex(([name]) => name === "packs");
	const before = JSON.stringify(Object.fromEntries(fields.slice(0, at)));
	const after = JSON.stringify(Object.fromEntries(fields.slice(at + 1)));
	yield `${before.slice(0, -1)}${before.length > 2 ? "," : ""}"packs":[`;
	for (let i = 0; i < file.packs.length; i++) yield `${i > 0 ? "," : ""}${JSON.stringify(file.packs[i])}`;
	yield `]${after.length > 2 ? `,${after.slice(1)}` : "}"}`;
}
