import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import pLimit from "p-limit";
import type { Catalog } from "../catalog/catalog.js";
import { CatalogCache, isRecord, treeCacheKey } from "../catalog/catalog-cache.js";
import type { Destination, ObjectLock } from "../destination/destination.js";
import { classifyFault, RetryBudget } from "../destination/faults.js";
import type { UploadedObject } from "../engine/run-types.js";
import type { Clock } from "../host/clock.js";
import { describeError, HoldfastError } from "../host/errors.js";
import type { Logger } from "../host/logger.js";
import { encodeBlob, open, seal } from "./blob-codec.js";
import { BlobPool, sharedCopy } from "./blob-pool.js";
import { type PackedBlobs, restorePackedBlobs, type StoredPackedBlobs, storePackedBlobs } from "./blob-table.js";
import { blobWhat } from "./blob-work.js";
import { Chunker } from "./chunker.js";
import { compress, decompress } from "./compression.js";
import { DEFAULT_SCRYPT, deriveKey, RepositoryKeys, type ScryptParams, sha256Hex } from "./crypto.js";
import { type BlobType, CHUNKER_DEFAULTS, FORMAT_VERSION, hashOfKey, KEY_PREFIX, packKey } from "./format.js";
import {
	type BlobLocation,
	type CondemnedObject,
	type IndexFile,
	type IndexLock,
	type IndexPack,
	isCarrier,
	type LoadedIndexFile,
	loadedIndexFile,
	MasterIndex,
} from "./index-file.js";
import { describeRecovery, type PackHeaderRecovery, recoverFromPackHeaders, uncoveredIndexes } from "./index-recovery.js";
import { ObjectReader } from "./object-reader.js";
import { PackBuilder, readPackHeader, sharedBuffer } from "./pack.js";
import type { Snapshot, SnapshotListing, SnapshotRef, UnreadableObject } from "./snapshot.js";
import { parseTree, type Tree } from "./tree.js";

/** An index object's head as `loadIndex` orders it, with its packed blobs when they were read along. */
interface IndexHead {
	file: LoadedIndexFile;
	packed?: PackedBlobs[] | undefined;
}

/** `config`: sealed with the master key; written once at init. */
export interface RepositoryConfig {
	v: typeof FORMAT_VERSION;
	id: string;
	created: string;
	chunker: { min: number; avg: number; max: number };
}

/** `keys/<sha256>`: plaintext JSON; the master secret wrapped by a password-derived key. */
interface KeyFile {
	v: 1;
	kdf: "scrypt";
	N: number;
	r: number;
	p: number;
	salt: string;
	created: string;
	host: string;
	master: string;
}

/** A blob to read from a pack: where it lies (sealed) and how long its plaintext is. */
export interface RangeBlob {
	readonly id: string;
	readonly offset: number;
	readonly length: number;
	readonly rawLength: number;
}

export interface RepositoryOptions {
	readonly destination: Destination;
	readonly clock: Clock;
	readonly logger: Logger;
	readonly catalog?: Catalog;
	/** Target pack size in bytes (default 16 MiB). */
	readonly packSize?: number;
	readonly compression?: boolean;
	readonly scrypt?: ScryptParams;
	/** Pack uploads in flight at once. */
	readonly uploadConcurrency?: number;
	/** How long transient read faults are retried before the destination counts as unreachable. */
	readonly retryBudgetMs?: number;
	/** Told of every object once the destination acknowledged it (the engine's `didUploadObject`). */
	readonly onObjectWritten?: (object: UploadedObject) => void;
}

/** Config copies and key files kept protected at once: one damaged object never locks the owner out. */
export const METADATA_COPIES = 2;

/** A cap on bytes in memory that packs under upload are charged to; `hold` never waits (an upload always finishes). */
export interface PackBudget {
	hold(bytes: number): void;
	give(bytes: number): void;
}

/** Blobs up to this size (most trees) are hashed and sealed on the calling thread. */
const INLINE_BLOB = 64 * 1024;

/** Index objects are written every this many packs, so a killed run loses at most that much work. */
const PACKS_PER_INDEX = 8;

export class Repository {
	/** Replaced whole by `loadIndex`, so each run sees what other hosts and grooming did since. */
	index = new MasterIndex();
	readonly reader: ObjectReader;
	readonly chunker: Chunker;
	/** The lock every object written from now on carries; the engine sets it per run. */
	writeLock: ObjectLock | undefined;
	/** Blobs written (or being written) this run, all with this run's lock; cleared per run. */
	readonly #pending = new Map<string, Promise<void> & { done: () => void }>();
	/**
	 * Open packs, one per blob type and lock: trees apart from data (they churn at another
	 * pace, so neither keeps the other's dead bytes alive), and renewed copies apart when
	 * they carry a lock of their own.
	 */
	readonly #packs = new Map<string, { builder: PackBuilder; lock: ObjectLock }>();
	#unindexed: IndexPack[] = [];
	#writtenThisRun: string[] = [];
	/** Objects other than packs written since the last index object: recorded (with versions) in the next. */
	#unrecorded: string[] = [];
	readonly #uploads: ReturnType<typeof pLimit>;
	readonly #inflight = new Set<Promise<void>>();
	readonly #stats = { packs: 0, bytesUploaded: 0, objects: 0 };
	readonly #packCache = new Map<string, Promise<Buffer>>();
	readonly #pool: BlobPool;
	readonly #packBuffers: Buffer[] = [];
	/** The last blob being added to a pack: the next waits for it. */
	#adding: Promise<unknown> = Promise.resolve();
	/** Where the bytes of packs being uploaded are counted, while a backup sets one: its single cap on what it holds. */
	#packBudget: PackBudget | undefined;

	private constructor(
		readonly options: RepositoryOptions,
		readonly keys: RepositoryKeys,
		readonly config: RepositoryConfig,
	) {
		this.reader = new ObjectReader(options.destination, retryBudgetFor(options));
		this.chunker = new Chunker(keys.chunkerSeed, config.chunker);
		this.#uploads = pLimit(options.uploadConcurrency ?? 2);
		this.#pool = new BlobPool({ ...keys.raw, chunkerSeed: keys.chunkerSeed, chunker: config.chunker });
		this.cache = options.catalog
			? new CatalogCache(options.catalog, keys.catalogMac, (key) =>
					options.logger.warn(
						`catalog: a cached ${CACHED_KIND[key.split(":")[0] ?? ""] ?? "value"} did not verify (damaged, or written for another repository); what does not verify is read again from the destination`,
					),
				)
			: undefined;
	}

	/** The catalog, each value sealed under this repository's key: what does not verify is read again. */
	readonly cache: CatalogCache | undefined;

	/** The worker threads that chunk, hash, compress and seal: the backup pipeline hands them its bytes. */
	get pool(): BlobPool {
		return this.#pool;
	}

	get compression(): boolean {
		return this.options.compression ?? true;
	}

	get #packSize(): number {
		return this.options.packSize ?? 16 * 1024 * 1024;
	}

	/**
	 * Room for a full pack plus one largest blob, so a pack is filled without moving its bytes.
	 * Buffers of uploaded packs are reused: a worker that hashed one keeps it alive until its
	 * own collector runs, so fresh ones would pile up. (Pages of a buffer are taken only as
	 * they are written: a pack of trees holds little.)
	 */
	#newPack(): PackBuilder {
		return new PackBuilder(this.#packBuffers.pop() ?? sharedBuffer(this.#packCapacity));
	}

	get #packCapacity(): number {
		return this.#packSize + this.config.chunker.max + 1024;
	}

	#recyclePack(builder: PackBuilder): void {
		const limit = (this.options.uploadConcurrency ?? 2) + 1;
		if (builder.buffer.length === this.#packCapacity && this.#packBuffers.length < limit) this.#packBuffers.push(builder.buffer);
	}

	/**
	 * Counts the bytes of each pack from the moment it is handed to the uploader until it is
	 * stored: reading waits while uploads hold the budget, instead of both filling memory.
	 */
	chargePacksTo(budget: PackBudget | undefined): void {
		this.#packBudget = budget;
	}

	/** Stops the blob pool's worker threads. */
	async close(): Promise<void> {
		await this.#pool.close();
	}

	get destination(): Destination {
		return this.options.destination;
	}

	get id(): string {
		return this.config.id;
	}

	get stats(): Readonly<{ packs: number; bytesUploaded: number; objects: number }> {
		return this.#stats;
	}

	/** Keys of objects written since the run began (for the lock and audit steps). */
	get writtenThisRun(): readonly string[] {
		return this.#writtenThisRun;
	}

	/**
	 * Whether a repository is there: a key file, without which nothing opens it. A config alone
	 * is an init killed before its first key file; a new init must not take it for a repository.
	 */
	static async exists(destination: Destination): Promise<boolean> {
		return (await listKeys(destination, KEY_PREFIX.keys)).length > 0;
	}

	/** Creates the repository: a random master secret, its config and one key file, all locked. */
	static async init(password: string, lock: ObjectLock, options: RepositoryOptions): Promise<Repository> {
		const { destination } = options;
		if (await Repository.exists(destination)) {
			throw new HoldfastError("REPOSITORY_EXISTS", `a repository already exists at ${destination.description}`);
		}
		const master = RepositoryKeys.generateMaster();
		const keys = RepositoryKeys.fromMaster(master);
		const config: RepositoryConfig = {
			v: FORMAT_VERSION,
			id: randomBytes(16).toString("hex"),
			created: options.clock.now().toISOString(),
			chunker: { ...CHUNKER_DEFAULTS },
		};
		const repository = new Repository(options, keys, config);
		repository.writeLock = lock;
		await repository.writeMetadataCopies(password);
		// Records the config's and key file's versions and locks, so later runs can extend them.
		await repository.writeIndex([]);
		return repository;
	}

	static async open(password: string, options: RepositoryOptions): Promise<Repository> {
		const { destination } = options;
		const reader = new ObjectReader(destination, retryBudgetFor(options));
		const keyKeys = await listKeys(destination, KEY_PREFIX.keys, reader.budget);
		if (keyKeys.length === 0) {
			throw new HoldfastError("NO_REPOSITORY", `no repository at ${destination.description} (run "holdfast init" first)`);
		}
		let master: Buffer | undefined;
		const damagedKeys: string[] = [];
		let firstError: unknown;
		let otherPasswords = 0;
		for (const key of keyKeys) {
			try {
				const bytes = await reader.read(key, async (verified) => verified);
				master = await unwrapKeyFile(bytes, password, key);
				break;
			} catch (error) {
				if (error instanceof HoldfastError && error.code === "WRONG_PASSWORD") {
					otherPasswords++;
					continue;
				}
				// A store that did not answer says nothing about the password, nor about damage.
				if (classifyFault(error) === "unreachable") throw error;
				firstError ??= error;
				damagedKeys.push(key);
				options.logger.debug(`key ${key}: ${(error as Error).message}`);
			}
		}
		if (!master) {
			// A key file that cannot be read is damage (or a refusal), not a password that does not fit.
			if (damagedKeys.length > 0 && otherPasswords === 0) {
				throw new HoldfastError(
					"CORRUPT",
					`no key file at ${destination.description} could be read (${describeError(firstError)})`,
					{ cause: firstError },
				);
			}
			throw new HoldfastError(
				"WRONG_PASSWORD",
				`wrong password for the repository at ${destination.description}` +
					(damagedKeys.length > 0 ? ` (${damagedKeys.length} unreadable key file(s) could not be tried)` : ""),
			);
		}
		for (const key of damagedKeys) options.logger.warn(`${key}: unreadable key file; another copy opened the repository`);
		const keys = RepositoryKeys.fromMaster(master);
		const configKeys = await listKeys(destination, KEY_PREFIX.config, reader.budget);
		let config: RepositoryConfig | undefined;
		const damagedConfigs: string[] = [];
		let configError: unknown;
		for (const key of configKeys) {
			try {
				config = await reader.read(
					key,
					async (bytes) => JSON.parse(decompress(keys.open(bytes, key), key).toString("utf8")) as RepositoryConfig,
				);
				break;
			} catch (error) {
				if (classifyFault(error) === "unreachable") throw error;
				configError ??= error;
				damagedConfigs.push(key);
			}
		}
		if (!config) {
			throw new HoldfastError(
				"CORRUPT",
				`no readable repository config at ${destination.description}${configError ? ` (${describeError(configError)})` : ""}`,
				{ cause: configError },
			);
		}
		for (const key of damagedConfigs) options.logger.warn(`${key}: unreadable config copy; another copy was read`);
		if (config.v !== FORMAT_VERSION) {
			throw new HoldfastError(
				"CORRUPT",
				`repository format ${String(config.v)} is not supported (this holdfast reads ${FORMAT_VERSION})`,
			);
		}
		const repository = new Repository(options, keys, config);
		repository.#metadata = [
			...configKeys.filter((k) => !damagedConfigs.includes(k)),
			...keyKeys.filter((k) => !damagedKeys.includes(k)),
		];
		return repository;
	}

	/** Config copies and key files: every snapshot needs them, so they are locked and renewed like data. */
	#metadata: string[] = [];

	get metadataKeys(): readonly string[] {
		return this.#metadata;
	}

	async #writeConfig(): Promise<string> {
		const sealed = await this.#sealJson(this.config);
		const key = `${KEY_PREFIX.config}${sha256Hex(sealed)}`;
		await this.#put(key, sealed, "config");
		this.#metadata.push(key);
		return key;
	}

	/**
	 * Writes `copies` fresh config copies and key files for this password, locked with the
	 * run's lock. Each copy is written on its own (a new nonce, a new salt), so one damaged
	 * object never costs the repository; stores that cannot extend locks renew them this way.
	 */
	async writeMetadataCopies(password: string, copies = METADATA_COPIES): Promise<string[]> {
		const written: string[] = [];
		for (let i = 0; i < copies; i++) {
			written.push(await this.#writeConfig());
			written.push(await this.addPassword(password, this.#requireLock()));
		}
		return written;
	}

	/** Adds a key file for another password; data stays as it is. */
	async addPassword(password: string, lock: ObjectLock): Promise<string> {
		const params = this.options.scrypt ?? DEFAULT_SCRYPT;
		const salt = randomBytes(32);
		const kek = await deriveKey(password, salt, params);
		const file: KeyFile = {
			v: 1,
			kdf: "scrypt",
			...params,
			salt: salt.toString("base64"),
			created: this.options.clock.now().toISOString(),
			host: hostname(),
			master: seal(kek, this.keys.master).toString("base64"),
		};
		const bytes = Buffer.from(JSON.stringify(file));
		const key = `${KEY_PREFIX.keys}${sha256Hex(bytes)}`;
		const { versionId } = await this.options.destination.put(key, bytes, lock);
		this.index.noteLock(key, lock.mode, lock.until);
		if (versionId) this.index.versions.set(key, versionId);
		this.#writtenThisRun.push(key);
		this.#unrecorded.push(key);
		this.#metadata.push(key);
		this.options.onObjectWritten?.({ key, size: bytes.length, lock, kind: "key" });
		return key;
	}

	// ---- index ---------------------------------------------------------------------------

	/** Index objects the last `loadIndex` could not read: what they record is unknown, so grooming stops. */
	unreadableIndex: UnreadableObject[] = [];

	/**
	 * Lists `index/` and merges every index object; verified content is cached in the catalog.
	 * `blobs: false` (for commands that read no blob, such as listing snapshots) skips the
	 * blob locations, by far the largest part of a large index.
	 */
	async loadIndex(options: { blobs?: boolean } = {}): Promise<void> {
		const withBlobs = options.blobs ?? true;
		// Built aside and swapped in whole: a read still in flight never sees (or recovers against) a half-merged index.
		const index = new MasterIndex({ withBlobs });
		const keys = await listKeys(this.destination, KEY_PREFIX.index, this.reader.budget);
		const limit = pLimit(8);
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
		// First every index object's head (all but its blob entries), to learn the order.
		const heads = await Promise.all(keys.map((key) => limit(() => this.#readIndexHead(key, withBlobs).catch(skip(key)))));
		// Merge oldest first so tombstones from grooming apply after what they remove.
		const ordered = keys.flatMap((key, i) => (heads[i] ? [{ key, ...(heads[i] as IndexHead) }] : []));
		heads.length = 0;
		ordered.sort((a, b) => a.file.created.localeCompare(b.file.created) || a.key.localeCompare(b.key));
		if (withBlobs)
			index.blobs.reserve(ordered.reduce((sum, { file }) => sum + file.packs.reduce((n, p) => n + p.blobCount, 0), 0));
		const merged: LoadedIndexFile[] = [];
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
		// Metadata no index recorded (an interrupted init): its lock is learned when first extended.
		for (const key of this.#metadata) if (!index.locks.has(key)) index.noteLock(key, "compliance", new Date(0));
		this.index = index;
		this.#headerRecovery = undefined;
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
			if (this.#uncoveredIndexes.includes(key)) this.options.logger.warn(message);
			else this.options.logger.debug(`${message} (its packs are relisted by a rebuilt index object)`);
		}
		if (this.#uncoveredIndexes.length > 0) await this.recoverUnlistedPacks().catch(() => undefined);
	}

	/** Index objects that verified under no version at the last load. */
	#unreadableIndexes: string[] = [];
	/** Those of them no readable index object says it rebuilt: packs only they listed are unknown. */
	#uncoveredIndexes: string[] = [];
	/** The pack-header fallback of the current index load: run at most once, and only when needed. */
	#headerRecovery: Promise<PackHeaderRecovery> | undefined;

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

	/**
	 * Adds to the index every pack in `data/` that no readable index object lists, rebuilt from
	 * the pack's own header. Lists `data/` (billed), so it runs only when an index object is
	 * unreadable or a blob is missing, once per index load.
	 */
	recoverUnlistedPacks(): Promise<PackHeaderRecovery> {
		if (this.#headerRecovery) return this.#headerRecovery;
		const index = this.index;
		const running = recoverFromPackHeaders(
			this.destination,
			this.keys,
			(key) => index.packs.has(key) || index.deleted.has(key),
		).then((found) => {
			for (const pack of found.packs) index.addPack(pack, undefined);
			const line = describeRecovery(found);
			if (line) this.options.logger.warn(line);
			return found;
		});
		this.#headerRecovery = running;
		// A failed listing (the network) may be retried by the next caller.
		running.catch((error: unknown) => {
			if (this.#headerRecovery === running) this.#headerRecovery = undefined;
			this.options.logger.warn(`recovering packs from their headers failed: ${(error as Error).message}`);
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

	/**
	 * The head of one index object: all but its blob entries, each pack with its blob count.
	 * The catalog keeps an index object in two sealed values, this head and the blobs in base64
	 * (`#readPackedBlobs`), so a load without blobs reads a few bytes a pack and a load with
	 * them parses no array per blob. Read from the destination, the packed blobs come along
	 * when there is no catalog to read them from later.
	 */
	async #readIndexHead(key: string, withBlobs: boolean): Promise<IndexHead> {
		const head = await this.cache?.get(`index-head:${this.id}:${key}`, isLoadedHead);
		if (head) return { file: head };
		const { file, packed } = await this.#cacheIndexFile(key, await this.readIndexFile(key, { keep: false }));
		return withBlobs && !this.cache ? { file, packed } : { file };
	}

	/** Caches a verified index object (read, or written by this run) in the form `loadIndex` reads. */
	async #cacheIndexFile(key: string, indexFile: IndexFile): Promise<Required<IndexHead>> {
		const loaded = loadedIndexFile(indexFile, true);
		const file = { ...loaded, packs: loaded.packs.map((pack) => ({ ...pack, packed: undefined })) };
		const packed = loaded.packs.map((pack) => pack.packed as PackedBlobs);
		await this.cache?.setMany([
			{ key: `index-head:${this.id}:${key}`, value: file },
			{ key: `index-blobs:${this.id}:${key}`, value: packed.map(storePackedBlobs) },
		]);
		return { file, packed };
	}

	/** The packed blobs of each pack `head` lists: from the catalog, else from the object again. */
	async #readPackedBlobs(key: string, head: LoadedIndexFile): Promise<PackedBlobs[]> {
		const blobsKey = `index-blobs:${this.id}:${key}`;
		const stored = await this.cache?.get(blobsKey, isStoredBlobsOf(head));
		const packed = stored?.map(restorePackedBlobs);
		if (packed?.every((p, i) => p !== undefined && p.count + p.odd.length === head.packs[i]?.blobCount)) {
			return packed as PackedBlobs[];
		}
		const loaded = loadedIndexFile(await this.readIndexFile(key, { keep: false }), true);
		const again = loaded.packs.map((pack) => pack.packed as PackedBlobs);
		await this.cache?.set(blobsKey, again.map(storePackedBlobs));
		return again;
	}

	/** One index object, verified (from the catalog when it was read before). */
	async readIndexFile(key: string, options: { keep?: boolean } = {}): Promise<IndexFile> {
		const cacheKey = `index:${this.id}:${key}`;
		const cached = await this.cache?.get(cacheKey, isIndexFile);
		if (cached) return cached;
		const file = await this.reader.read(key, (bytes) => this.#openJson<IndexFile>(bytes, key));
		// `keep: false` when the caller caches the object in its own form.
		if (options.keep !== false) await this.cache?.set(cacheKey, file);
		return file;
	}

	// ---- writing ---------------------------------------------------------------------------

	/**
	 * Stores a blob unless a copy exists that is locked at least until `minLock`.
	 * Returns its ID and whether bytes were added.
	 */
	async saveBlob(type: BlobType, data: Uint8Array, minLock?: Date): Promise<{ id: string; added: boolean }> {
		// A tree of a few KiB is hashed and sealed here in microseconds: a trip to a worker costs more.
		const inline = data.length <= INLINE_BLOB;
		const shared = inline || data.buffer instanceof SharedArrayBuffer ? data : sharedCopy(data);
		const whole = new Uint32Array([0, shared.length]);
		const id = inline ? this.keys.blobId(data) : ((await this.#pool.hash(shared, whole)) as [string])[0];
		if (!this.claimBlob(id, minLock)) {
			await this.#pending.get(id);
			return { id, added: false };
		}
		try {
			const sealed = inline
				? encodeBlob(this.keys.raw, data, this.compression)
				: ((await this.#pool.seal(shared, whole, this.compression)) as [Uint8Array])[0];
			await this.addSealedBlob(type, id, sealed, data.length);
		} catch (error) {
			this.releaseClaim(id);
			throw error;
		}
		return { id, added: true };
	}

	/**
	 * The dedup decision: true when this caller must store blob `id` — no copy locked until
	 * `minLock` is indexed and none is being written this run. A true answer is a claim that
	 * `addSealedBlob` (or `releaseClaim`) settles.
	 */
	claimBlob(id: string, minLock?: Date): boolean {
		// A copy in a pack grooming condemned may be deleted before this run's snapshot is written.
		const known = this.index.reusable(id);
		if (known && this.index.copyLockedUntil(id, minLock)) return false;
		if (this.#pending.has(id)) return false;
		let done!: () => void;
		const pending = new Promise<void>((resolve) => (done = resolve));
		this.#pending.set(id, Object.assign(pending, { done }));
		return true;
	}

	/** Gives up a claim whose blob could not be sealed: a later copy may claim it again. */
	releaseClaim(id: string): void {
		const pending = this.#pending.get(id);
		this.#pending.delete(id);
		pending?.done();
	}

	/** Appends a claimed, sealed blob to the open pack of its type; a full pack starts uploading. */
	async addSealedBlob(type: BlobType, id: string, sealed: Uint8Array, rawLength: number, lock?: ObjectLock): Promise<void> {
		await this.#addToPack(type, id, sealed, rawLength, lock);
		this.#pending.get(id)?.done();
	}

	/**
	 * Blobs go into packs one at a time: a full pack waits for an upload slot before another is
	 * opened, so the packs in memory are the open one and those uploading, never a pile of
	 * full ones filled while the uploads are slow.
	 */
	#addToPack(type: BlobType, id: string, sealed: Uint8Array, rawLength: number, lock?: ObjectLock): Promise<void> {
		const added = this.#adding.then(() => this.#appendToPack(type, id, sealed, rawLength, lock));
		this.#adding = added.catch(() => undefined);
		return added;
	}

	async #appendToPack(
		type: BlobType,
		id: string,
		sealed: Uint8Array,
		rawLength: number,
		lock = this.#requireLock(),
	): Promise<void> {
		const slot = `${type}:${lock.mode}:${lock.until.getTime()}`;
		let open = this.#packs.get(slot);
		if (open && open.builder.count > 0 && !open.builder.fits(sealed.length)) {
			await this.#startPackUpload(slot);
			open = undefined;
		}
		if (!open) {
			open = { builder: this.#newPack(), lock };
			this.#packs.set(slot, open);
		}
		open.builder.add(type, id, sealed, rawLength);
		if (open.builder.size >= this.#packSize) await this.#startPackUpload(slot);
	}

	async #startPackUpload(slot: string): Promise<void> {
		const open = this.#packs.get(slot);
		this.#packs.delete(slot);
		if (!open || open.builder.count === 0) return;
		const { builder, lock } = open;
		// Bound the packs held in memory: wait while every upload slot is busy.
		while (this.#inflight.size >= (this.options.uploadConcurrency ?? 2)) await Promise.race(this.#inflight);
		const budget = this.#packBudget;
		const charged = builder.size;
		budget?.hold(charged);
		const task = this.#uploads(async () => {
			const { hash, bytes, blobs } = await builder.finish(this.keys, (data) => this.#pool.digest(data));
			const key = packKey(hash);
			const version = await this.#put(key, bytes, "pack", lock);
			const entry: IndexPack = {
				key,
				...(version ? { version } : {}),
				size: bytes.length,
				mode: lock.mode,
				until: lock.until.toISOString(),
				blobs: blobs.map((b) => [b.type === "tree" ? 1 : 0, b.id, b.offset, b.length, b.rawLength]),
			};
			this.#recyclePack(builder);
			this.#unindexed.push(entry);
			this.index.addPack(entry, undefined);
			// Indexed now: the index answers for these blobs, so a run of many files does not keep a claim per blob.
			for (const blob of blobs) {
				const claim = this.#pending.get(blob.id);
				if (!claim || this.index.reusable(blob.id)?.packKey !== key) continue;
				this.#pending.delete(blob.id);
				claim.done();
			}
			this.#stats.packs++;
			if (this.#unindexed.length >= PACKS_PER_INDEX) await this.writeIndex([]);
		});
		const tracked = task.finally(() => {
			this.#inflight.delete(tracked);
			budget?.give(charged);
		});
		this.#inflight.add(tracked);
	}

	/** Writes the open packs and waits for every upload. */
	async flushPacks(): Promise<void> {
		await this.#adding;
		for (const slot of [...this.#packs.keys()]) await this.#startPackUpload(slot);
		while (this.#inflight.size > 0) await Promise.all([...this.#inflight]);
	}

	/** Writes an index object for packs not yet indexed plus the given lock records. */
	async writeIndex(
		locks: IndexLock[],
		extra: { deleted?: string[]; forgotten?: string[]; rebuilt?: string[]; condemned?: CondemnedObject[] } = {},
	): Promise<string | undefined> {
		const packs = this.#unindexed;
		this.#unindexed = [];
		const recorded = this.#unrecorded.map((key): IndexLock => {
			const lock = this.index.locks.get(key);
			const version = this.index.versions.get(key);
			return {
				key,
				mode: lock?.mode ?? "compliance",
				until: (lock?.until ?? new Date(0)).toISOString(),
				...(version ? { version } : {}),
			};
		});
		this.#unrecorded = [];
		locks = [...recorded, ...locks];
		if (packs.length === 0 && locks.length === 0 && !extra.deleted && !extra.forgotten && !extra.rebuilt && !extra.condemned)
			return undefined;
		const lock = this.#requireLock();
		const file: IndexFile = {
			v: 1,
			created: this.options.clock.now().toISOString(),
			packs,
			locks,
			self: { mode: lock.mode, until: lock.until.toISOString() },
			...(extra.deleted ? { deleted: extra.deleted } : {}),
			...(extra.forgotten ? { forgotten: extra.forgotten } : {}),
			...(extra.rebuilt ? { rebuilt: extra.rebuilt } : {}),
			...(extra.condemned ? { condemned: extra.condemned } : {}),
		};
		const sealed = await this.#sealJson(file);
		const key = `${KEY_PREFIX.index}${sha256Hex(sealed)}`;
		await this.#put(key, sealed, "index");
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
		if (this.cache) await this.#cacheIndexFile(key, file);
		return key;
	}

	/** Writes an index object listing packs rebuilt from their headers, naming the unreadable index objects it stands for. */
	async writeRebuiltIndex(packs: readonly IndexPack[], rebuilt: readonly string[]): Promise<string | undefined> {
		this.#unindexed.push(...packs);
		return this.writeIndex([], rebuilt.length > 0 ? { rebuilt: [...rebuilt] } : {});
	}

	/**
	 * Copies a blob, sealed bytes as they are, into a new pack locked with `lock` (the run's by
	 * default): for a blob whose stored copies' locks end too soon, or (`evenIfWritten`) whose
	 * copy grooming condemned while this run used it. The caller has verified the bytes
	 * (`readSealedBlob`).
	 */
	async copySealedBlob(
		type: BlobType,
		id: string,
		sealed: Uint8Array,
		rawLength: number,
		options: { lock?: ObjectLock; evenIfWritten?: boolean } = {},
	): Promise<void> {
		if (!options.evenIfWritten) {
			if (this.#pending.has(id)) return;
			this.#pending.set(id, Object.assign(Promise.resolve(), { done: () => undefined }));
		}
		await this.#addToPack(type, id, sealed, rawLength, options.lock);
	}

	/** A blob's sealed bytes from the pack the index places it in, verified (authentication and keyed ID). */
	async readSealedBlob(id: string, location: BlobLocation): Promise<Buffer> {
		const what = `blob ${id.slice(0, 16)} in ${location.packKey}`;
		return this.reader.readRange(location.packKey, { offset: location.offset, length: location.length }, async (bytes) => {
			await this.decodeBlob(bytes, id, what);
			return bytes;
		});
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

	async saveSnapshot(snapshot: Snapshot): Promise<SnapshotRef> {
		const sealed = await this.#sealJson(snapshot);
		const id = sha256Hex(sealed);
		const key = `${KEY_PREFIX.snapshots}${id}`;
		await this.#put(key, sealed, "snapshot");
		await this.cache?.set(`snapshot:${this.id}:${key}`, snapshot);
		return { id, key, snapshot };
	}

	async #put(
		key: string,
		bytes: Buffer,
		kind: "pack" | "index" | "snapshot" | "config",
		lock = this.#requireLock(),
	): Promise<string | undefined> {
		const { versionId } = await this.destination.put(key, bytes, lock);
		this.index.noteLock(key, lock.mode, lock.until);
		if (versionId) this.index.versions.set(key, versionId);
		if (kind !== "pack") this.#unrecorded.push(key);
		this.#writtenThisRun.push(key);
		this.#stats.bytesUploaded += bytes.length;
		this.#stats.objects++;
		this.options.onObjectWritten?.({ key, size: bytes.length, lock, kind });
		return versionId || undefined;
	}

	#requireLock(): ObjectLock {
		if (!this.writeLock) throw new Error("internal: no lock set for writing");
		return this.writeLock;
	}

	beginRun(lock: ObjectLock): void {
		this.writeLock = lock;
		this.#writtenThisRun = [];
		// Objects written after the last index object (the snapshot) are recorded by the next one.
		// A repository stays open across runs; a blob written by an earlier run may need a new copy.
		this.#pending.clear();
		this.#stats.packs = 0;
		this.#stats.bytesUploaded = 0;
		this.#stats.objects = 0;
	}

	/**
	 * The version of `key` that is ours: the one recorded at write time, else the first
	 * that verifies (content hash, or for `config` decryption). Locks go on that version only.
	 */
	async ownVersion(key: string): Promise<string | undefined> {
		const recorded = this.index.versions.get(key);
		if (recorded) return recorded;
		const candidates: string[] = [];
		for await (const version of this.destination.listVersions(key)) {
			if (version.key === key && !version.isDeleteMarker && !version.incomplete) candidates.push(version.versionId);
		}
		const expected = hashOfKey(key);
		for (const versionId of candidates) {
			try {
				const bytes = Buffer.from(await this.destination.get(key, { versionId }));
				if (expected !== undefined && sha256Hex(bytes) === expected) {
					this.index.versions.set(key, versionId);
					return versionId;
				}
			} catch {
				// not ours; try the next
			}
		}
		return undefined;
	}

	// ---- reading ---------------------------------------------------------------------------

	/** The readable snapshots, oldest first; those that cannot be read are warned about and left out. */
	async listSnapshots(): Promise<SnapshotRef[]> {
		return (await this.readSnapshots()).refs;
	}

	/**
	 * Every snapshot object not forgotten: the readable ones, oldest first, and the ones no
	 * version of which verifies, for callers that must not take "unreadable" for "absent".
	 * A store that does not answer fails the whole listing (UNREACHABLE), never shortens it.
	 */
	async readSnapshots(options: { fresh?: boolean } = {}): Promise<SnapshotListing> {
		const refs: SnapshotRef[] = [];
		const unreadable: UnreadableObject[] = [];
		const written = new Map<string, Date>();
		await this.reader.budget.run(`list ${KEY_PREFIX.snapshots}`, async () => {
			written.clear();
			for await (const version of this.destination.listVersions(KEY_PREFIX.snapshots)) {
				if (version.isDeleteMarker || version.incomplete) continue;
				// The first write of the key: later versions may be an attacker's.
				const known = written.get(version.key);
				if (!known || version.lastModified < known) written.set(version.key, version.lastModified);
			}
		});
		const limit = pLimit(8);
		await Promise.all(
			[...written.keys()].sort().map((key) =>
				limit(async () => {
					const id = key.slice(KEY_PREFIX.snapshots.length);
					if (this.index.forgotten.has(id) || this.index.deleted.has(key)) return;
					try {
						refs.push({ id, key, snapshot: await this.loadSnapshotObject(key, options), written: written.get(key) as Date });
					} catch (error) {
						if (classifyFault(error) === "unreachable") throw error;
						this.options.logger.warn(`${key}: ${(error as Error).message}`);
						unreadable.push({ key, id, reason: reasonOf(error, key), written: written.get(key) as Date });
					}
				}),
			),
		);
		refs.sort((a, b) => a.snapshot.time.localeCompare(b.snapshot.time) || a.id.localeCompare(b.id));
		unreadable.sort((a, b) => a.key.localeCompare(b.key));
		return { refs, unreadable };
	}

	/** A snapshot object, from the catalog unless `fresh` asks for the destination's copy (check). */
	async loadSnapshotObject(key: string, options: { fresh?: boolean } = {}): Promise<Snapshot> {
		const cacheKey = `snapshot:${this.id}:${key}`;
		const cached = options.fresh ? undefined : await this.cache?.get(cacheKey, isSnapshot);
		if (cached) return cached;
		const snapshot = await this.reader.read(key, (bytes) => this.#openJson<Snapshot>(bytes, key));
		await this.cache?.set(cacheKey, snapshot);
		return snapshot;
	}

	/** Reads, decrypts, decompresses and verifies one blob. */
	async loadBlob(id: string, options: { wholePack?: boolean } = {}): Promise<Buffer> {
		const location = this.index.blobs.get(id) ?? (await this.locateBlob(id));
		if (!location) throw new HoldfastError("NOT_FOUND", `blob ${id.slice(0, 16)} is in no pack of the index`);
		const what = `blob ${id.slice(0, 16)} in ${location.packKey}`;
		const verify = (sealed: Buffer) => this.decodeBlob(sealed, id, what);
		if (options.wholePack) {
			try {
				const pack = await this.loadPack(location.packKey);
				return await verify(pack.subarray(location.offset, location.offset + location.length));
			} catch {
				// fall back to a ranged read, which tries every version of the pack
			}
		}
		return this.reader.readRange(location.packKey, { offset: location.offset, length: location.length }, verify);
	}

	/** A whole pack, verified against its name; a few recent packs are kept for restores. */
	async loadPack(key: string): Promise<Buffer> {
		let entry = this.#packCache.get(key);
		if (!entry) {
			entry = this.reader.read(key, async (bytes) => bytes);
			this.#packCache.set(key, entry);
			entry.catch(() => this.#packCache.delete(key));
			while (this.#packCache.size > 4) this.#packCache.delete(this.#packCache.keys().next().value as string);
		}
		return entry;
	}

	/**
	 * Blobs of one pack, sorted by offset, read with one ranged GET of the span they cover and
	 * opened on the pool's threads in one hand-off. Each blob's AEAD and keyed ID prove it: the
	 * pack as a whole is not hashed, and bytes between the blobs are never looked at.
	 */
	async loadBlobRange(packKey: string, blobs: readonly RangeBlob[]): Promise<Buffer[]> {
		const start = blobs[0]?.offset ?? 0;
		const end = blobs.reduce((max, blob) => Math.max(max, blob.offset + blob.length), start);
		const regions = new Uint32Array(blobs.length * 2);
		blobs.forEach((blob, i) => {
			regions[i * 2] = blob.offset - start;
			regions[i * 2 + 1] = blob.length;
		});
		const ids = blobs.map((blob) => blob.id);
		return this.reader.readRange(packKey, { offset: start, length: end - start }, async (bytes) => {
			if (bytes.length !== end - start) throw new HoldfastError("CORRUPT", `${packKey}: shorter than the index says`);
			const decoded = await this.#pool.decodeMany(bytes, regions, ids, packKey);
			return blobs.map((blob, i) => {
				const plain = decoded.blobs[i] as Uint8Array;
				if (plain.length !== blob.rawLength) {
					throw new HoldfastError(
						"CORRUPT",
						`${blobWhat(blob.id, packKey)}: ${plain.length} bytes where the index says ${blob.rawLength}`,
					);
				}
				return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
			});
		});
	}

	/** Decrypts, decompresses and verifies one sealed blob (on the pool's threads). */
	async decodeBlob(sealed: Uint8Array, id: string, what: string): Promise<Buffer> {
		const plain = await this.#pool.decode(sealed, id, what);
		return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
	}

	async loadTree(id: string): Promise<Tree> {
		// Trees are immutable by ID; a cached one is trusted only when its MAC (keyed by this repository) verifies.
		const cacheKey = treeCacheKey(this.id, id);
		const cached = await this.cache?.get(cacheKey, isTree);
		if (cached) return cached;
		const tree = parseTree(await this.loadBlob(id, { wholePack: true }));
		await this.cache?.set(cacheKey, tree);
		return tree;
	}

	async readPackBlobs(key: string, bytes: Buffer) {
		return readPackHeader(this.keys, bytes, key);
	}

	async #sealJson(value: unknown): Promise<Buffer> {
		return this.keys.seal(compress(Buffer.from(JSON.stringify(value)), true));
	}

	async #openJson<T>(bytes: Buffer, what: string): Promise<T> {
		return JSON.parse(decompress(this.keys.open(bytes, what), what).toString("utf8")) as T;
	}
}

/** What each catalog key prefix caches, for the one warning line about a value that did not verify. */
const CACHED_KIND: Record<string, string> = {
	file: "file state",
	index: "index object",
	"index-head": "index object",
	"index-blobs": "index object",
	snapshot: "snapshot",
	tree: "tree",
};

/** Shapes a verified cached value must still have: a layout change without a tag change is a miss. */
function isLoadedHead(value: unknown): value is LoadedIndexFile {
	return (
		isIndexFile(value) &&
		value.packs.every((pack) => isRecord(pack) && typeof pack.key === "string" && typeof pack.blobCount === "number")
	);
}

function isStoredBlobsOf(head: LoadedIndexFile): (value: unknown) => value is StoredPackedBlobs[] {
	return (value): value is StoredPackedBlobs[] =>
		Array.isArray(value) &&
		value.length === head.packs.length &&
		value.every(
			(v) =>
				isRecord(v) &&
				typeof v.count === "number" &&
				typeof v.ids === "string" &&
				typeof v.numbers === "string" &&
				Array.isArray(v.odd),
		);
}

function isIndexFile(value: unknown): value is IndexFile & Record<string, unknown> {
	return isRecord(value) && value.v === 1 && typeof value.created === "string" && Array.isArray(value.packs);
}

function isSnapshot(value: unknown): value is Snapshot {
	return isRecord(value) && typeof value.time === "string" && typeof value.tree === "string";
}

function isTree(value: unknown): value is Tree {
	return isRecord(value) && Array.isArray(value.nodes);
}

/**
 * Keys under a prefix that have at least one real version. Versions, not the plain listing:
 * an attacker's delete markers hide objects from a listing, not from us.
 */
export async function listKeys(destination: Destination, prefix: string, budget?: RetryBudget): Promise<string[]> {
	const list = async () => {
		const keys = new Set<string>();
		for await (const version of destination.listVersions(prefix)) {
			if (!version.isDeleteMarker && !version.incomplete) keys.add(version.key);
		}
		return [...keys].sort();
	};
	return budget ? budget.run(`list ${prefix}`, list) : list();
}

/** Why `key` could not be read, in one line that does not repeat the key. */
function reasonOf(error: unknown, key: string): string {
	const line = describeError(error);
	return line.startsWith(`${key}: `) ? line.slice(key.length + 2) : line;
}

function retryBudgetFor(options: RepositoryOptions): RetryBudget {
	return new RetryBudget(
		options.destination.description,
		options.retryBudgetMs !== undefined ? { budgetMs: options.retryBudgetMs } : {},
	);
}

async function unwrapKeyFile(bytes: Buffer, password: string, key: string): Promise<Buffer> {
	let file: KeyFile;
	try {
		file = JSON.parse(bytes.toString("utf8")) as KeyFile;
	} catch (cause) {
		throw new HoldfastError("CORRUPT", `${key}: not a key file`, { cause });
	}
	const kek = await deriveKey(password, Buffer.from(file.salt, "base64"), file);
	try {
		return open(kek, Buffer.from(file.master, "base64"), key);
	} catch (cause) {
		throw new HoldfastError("WRONG_PASSWORD", "wrong password", { cause });
	}
}
