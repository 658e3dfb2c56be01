import { type Catalog, openCatalogEarly } from "../catalog/catalog.js";
import { CatalogCache } from "../catalog/catalog-cache.js";
import type { Destination, ObjectLock } from "../destination/destination.js";
import type { RangeFiles, RangeRestored } from "../engine/restore-range-work.js";
import type { UploadedObject } from "../engine/run-types.js";
import type { Clock } from "../host/clock.js";
import { HoldfastError } from "../host/errors.js";
import type { Logger } from "../host/logger.js";
import { BlobPool } from "./blob-pool.js";
import { BlobReader, type RangeBlob } from "./blob-reader.js";
import { Chunker } from "./chunker.js";
import type { RepositoryKeys } from "./crypto.js";
import type { EarlyKeyDerivations } from "./early-key.js";
import type { BlobType } from "./format.js";
import { KEY_PREFIX } from "./format.js";
import type { BlobLocation, IndexLock, IndexPack, MasterIndex } from "./index-file.js";
import type { PackHeaderRecovery } from "./index-recovery.js";
import { type IndexExtras, IndexStore } from "./index-store.js";
import type { KeyDerivationInput, ScryptParams } from "./key-derivation.js";
import { KeyStore, newRepository, type RepositoryConfig, unlockRepository } from "./key-store.js";
import { ObjectReader } from "./object-reader.js";
import { listKeys, ownVersion } from "./object-versions.js";
import { ObjectWriter } from "./object-writer.js";
import { PackUploader } from "./pack-uploader.js";
import type { Snapshot, SnapshotListing, SnapshotRef, UnreadableObject } from "./snapshot.js";
import { SnapshotStore } from "./snapshot-store.js";
import type { Tree } from "./tree.js";

// One repository, opened: the rooms (keys, pack uploader, index, snapshots, object reads) put together on one destination.

export type { RangeBlob } from "./blob-reader.js";
export { METADATA_COPIES, type RepositoryConfig } from "./key-store.js";
export { listKeys } from "./object-versions.js";

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
	/** Told of every object once the destination acknowledged it (the engine's `didUploadObject`). */
	readonly onObjectWritten?: (object: UploadedObject) => void;
	/** Key derivations started before the key files were read (`Repository.open`). */
	readonly earlyKeys?: EarlyKeyDerivations;
}

export class Repository {
	/**
	 * The salt and parameters of the key file that opened this repository; after `init`, of the
	 * key file the next unlock tries first.
	 */
	unlockedWith: KeyDerivationInput | undefined;
	readonly reader: ObjectReader;
	readonly chunker: Chunker;
	/** The catalog, each value sealed under this repository's key: what does not verify is read again. */
	readonly cache: CatalogCache | undefined;
	readonly #pool: BlobPool;
	readonly #writer: ObjectWriter;
	readonly #keyStore: KeyStore;
	readonly #indexStore: IndexStore;
	readonly #uploader: PackUploader;
	readonly #snapshots: SnapshotStore;
	readonly #blobs: BlobReader;

	private constructor(
		readonly options: RepositoryOptions,
		readonly keys: RepositoryKeys,
		readonly config: RepositoryConfig,
		metadata: readonly string[] = [],
	) {
		const { destination, clock, logger } = options;
		this.reader = new ObjectReader(destination);
		this.chunker = new Chunker(keys.chunkerSeed, config.chunker);
		this.#pool = new BlobPool({ ...keys.raw, chunkerSeed: keys.chunkerSeed, chunker: config.chunker });
		this.cache = options.catalog
			? new CatalogCache(options.catalog, keys.catalogMac, (key) =>
					logger.warn(
						`catalog: a cached ${CACHED_KIND[key.split(":")[0] ?? ""] ?? "value"} did not verify (damaged, or written for another repository); what does not verify is read again from the destination`,
					),
				)
			: undefined;
		this.#writer = new ObjectWriter(destination, () => this.#indexStore.index, options.onObjectWritten);
		this.#keyStore = new KeyStore(keys, config, this.#writer, options, metadata);
		const shared = { destination, reader: this.reader, keys, cache: this.cache, repositoryId: config.id, logger };
		this.#indexStore = new IndexStore({
			...shared,
			clock,
			writer: this.#writer,
			metadataKeys: () => this.#keyStore.metadataKeys,
		});
		this.#uploader = new PackUploader(
			{
				packSize: options.packSize,
				uploadConcurrency: options.uploadConcurrency,
				compression: this.compression,
				largestBlob: config.chunker.max,
			},
			keys,
			this.#pool,
			this.#writer,
			this.#indexStore,
		);
		this.#snapshots = new SnapshotStore({ ...shared, writer: this.#writer, indexStore: this.#indexStore });
		this.#blobs = new BlobReader({ ...shared, pool: this.#pool, indexStore: this.#indexStore });
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
		const { keys, config } = newRepository(options.clock);
		const repository = new Repository(options, keys, config);
		repository.writeLock = lock;
		await repository.writeMetadataCopies(password);
		repository.unlockedWith = repository.#keyStore.firstWritten;
		// Records the config's and key file's versions and locks, so later runs can extend them.
		await repository.writeIndex([]);
		return repository;
	}

	static async open(password: string, options: RepositoryOptions): Promise<Repository> {
		const reader = new ObjectReader(options.destination);
		// The catalog's file opens while scrypt runs: the index load reads it first thing after.
		const { keys, config, metadata, unlockedWith } = await unlockRepository(
			password,
			options.destination,
			reader,
			options.logger,
			{ whileDeriving: () => openCatalogEarly(options.catalog), early: options.earlyKeys },
		);
		const repository = new Repository(options, keys, config, metadata);
		repository.unlockedWith = unlockedWith;
		return repository;
	}

	// ---- the repository as a whole ---------------------------------------------------------

	get destination(): Destination {
		return this.options.destination;
	}

	get id(): string {
		return this.config.id;
	}

	get compression(): boolean {
		return this.options.compression ?? true;
	}

	/** The worker threads that chunk, hash, compress and seal: the backup pipeline hands them its bytes. */
	get pool(): BlobPool {
		return this.#pool;
	}

	/** Stops the blob pool's worker threads and removes the files of packs a failed run left open. */
	async close(): Promise<void> {
		await this.#pool.close();
		await this.#uploader.discardOpenPacks();
	}

	beginRun(lock: ObjectLock): void {
		this.#writer.beginRun(lock);
		// Objects written after the last index object (the snapshot) are recorded by the next one.
		// A repository stays open across runs; a blob written by an earlier run may need a new copy.
		this.#uploader.beginRun();
	}

	/** The lock every object written from now on carries; the engine sets it per run. */
	get writeLock(): ObjectLock | undefined {
		return this.#writer.writeLock;
	}

	set writeLock(lock: ObjectLock | undefined) {
		this.#writer.writeLock = lock;
	}

	get stats(): Readonly<{ packs: number; bytesUploaded: number; objects: number }> {
		return this.#writer.stats;
	}

	/** Keys of objects written since the run began (for the lock and audit steps). */
	get writtenThisRun(): readonly string[] {
		return this.#writer.writtenThisRun;
	}

	/** The version of `key` that is ours: the one recorded at write time, else the first that verifies. */
	ownVersion(key: string): Promise<string | undefined> {
		return ownVersion(this.destination, this.index, key);
	}

	// ---- keys ------------------------------------------------------------------------------

	get metadataKeys(): readonly string[] {
		return this.#keyStore.metadataKeys;
	}

	writeMetadataCopies(password: string, copies?: number): Promise<string[]> {
		return this.#keyStore.writeMetadataCopies(password, copies);
	}

	addPassword(password: string, lock: ObjectLock): Promise<string> {
		return this.#keyStore.addPassword(password, lock);
	}

	// ---- index -----------------------------------------------------------------------------

	/** Replaced whole by `loadIndex`, so each run sees what other hosts and grooming did since. */
	get index(): MasterIndex {
		return this.#indexStore.index;
	}

	/** Index objects the last `loadIndex` could not read: what they record is unknown, so grooming stops. */
	get unreadableIndex(): UnreadableObject[] {
		return this.#indexStore.unreadableIndex;
	}

	get unreadableIndexes(): readonly string[] {
		return this.#indexStore.unreadableIndexes;
	}

	get uncoveredIndexes(): readonly string[] {
		return this.#indexStore.uncoveredIndexes;
	}

	get headerRecovery(): Promise<PackHeaderRecovery> | undefined {
		return this.#indexStore.headerRecovery;
	}

	loadIndex(options?: { blobs?: boolean }): Promise<void> {
		return this.#indexStore.loadIndex(options);
	}

	recoverUnlistedPacks(): Promise<PackHeaderRecovery> {
		return this.#indexStore.recoverUnlistedPacks();
	}

	locateBlob(id: string): Promise<BlobLocation | undefined> {
		return this.#indexStore.locateBlob(id);
	}

	readIndexFile(key: string, options?: { keep?: boolean }) {
		return this.#indexStore.readIndexFile(key, options);
	}

	writeIndex(locks: IndexLock[], extra?: IndexExtras): Promise<string | undefined> {
		return this.#indexStore.writeIndex(locks, extra);
	}

	writeRebuiltIndex(packs: readonly IndexPack[], rebuilt: readonly string[]): Promise<string | undefined> {
		return this.#indexStore.writeRebuiltIndex(packs, rebuilt);
	}

	relistPacks(keys: readonly string[]): void {
		this.#indexStore.relistPacks(keys);
	}

	// ---- packs -----------------------------------------------------------------------------

	saveBlob(type: BlobType, data: Uint8Array, minLock?: Date): Promise<{ id: string; added: boolean }> {
		return this.#uploader.saveBlob(type, data, minLock);
	}

	claimBlob(id: string, minLock?: Date): boolean {
		return this.#uploader.claimBlob(id, minLock);
	}

	releaseClaim(id: string): void {
		this.#uploader.releaseClaim(id);
	}

	addSealedBlob(type: BlobType, id: string, sealed: Uint8Array, rawLength: number, lock?: ObjectLock): Promise<void> {
		return this.#uploader.addSealedBlob(type, id, sealed, rawLength, lock);
	}

	/** Seals claimed blobs, the `regions` of `data` (shared memory), straight into a pack. */
	sealIntoPack(type: BlobType, data: Uint8Array, regions: Uint32Array, ids: readonly string[]): Promise<void> {
		return this.#uploader.sealIntoPack(type, data, regions, ids);
	}

	/** Hashes and seals the `regions` of `data` (shared memory) into a pack in one trip; a copy of a stored blob is dropped. */
	hashSealIntoPack(
		type: BlobType,
		data: Uint8Array,
		regions: Uint32Array,
		minLock: Date | undefined,
		decided: (id: string, rawLength: number, added: boolean) => void,
	): Promise<string[]> {
		return this.#uploader.hashSealIntoPack(type, data, regions, minLock, decided);
	}

	copySealedBlob(
		type: BlobType,
		id: string,
		sealed: Uint8Array,
		rawLength: number,
		options?: { lock?: ObjectLock; evenIfWritten?: boolean },
	): Promise<void> {
		return this.#uploader.copySealedBlob(type, id, sealed, rawLength, options);
	}

	flushPacks(): Promise<void> {
		return this.#uploader.flushPacks();
	}

	// ---- snapshots -------------------------------------------------------------------------

	saveSnapshot(snapshot: Snapshot): Promise<SnapshotRef> {
		return this.#snapshots.saveSnapshot(snapshot);
	}

	listSnapshots(): Promise<SnapshotRef[]> {
		return this.#snapshots.listSnapshots();
	}

	readSnapshots(options?: { fresh?: boolean }): Promise<SnapshotListing> {
		return this.#snapshots.readSnapshots(options);
	}

	loadSnapshotObject(key: string, options?: { fresh?: boolean }): Promise<Snapshot> {
		return this.#snapshots.loadSnapshotObject(key, options);
	}

	// ---- object reads ----------------------------------------------------------------------

	loadBlob(id: string, options?: { wholePack?: boolean }): Promise<Buffer> {
		return this.#blobs.loadBlob(id, options);
	}

	readSealedBlob(id: string, location: BlobLocation): Promise<Buffer> {
		return this.#blobs.readSealedBlob(id, location);
	}

	loadPack(key: string): Promise<Buffer> {
		return this.#blobs.loadPack(key);
	}

	restoreBlobRange(
		packKey: string,
		blobs: readonly RangeBlob[],
		files: RangeFiles,
		spareDamaged = false,
	): Promise<RangeRestored> {
		return this.#blobs.restoreBlobRange(packKey, blobs, files, spareDamaged);
	}

	decodeBlob(sealed: Uint8Array, id: string, what: string): Promise<Buffer> {
		return this.#blobs.decodeBlob(sealed, id, what);
	}

	loadTree(id: string): Promise<Tree> {
		return this.#blobs.loadTree(id);
	}

	readPackBlobs(key: string, bytes: Buffer) {
		return this.#blobs.readPackBlobs(key, bytes);
	}
}

/** What each catalog key prefix caches, for the one warning line about a value that did not verify. */
const CACHED_KIND: Record<string, string> = {
	file: "file state",
	folder: "file state",
	roots: "file state",
	index: "index object",
	"index-head": "index object",
	"index-blobs": "index object",
	snapshot: "snapshot",
	tree: "tree",
};
