import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import pLimit from "p-limit";
import type { Catalog } from "../catalog/catalog.js";
import type { Destination, ObjectLock } from "../destination/destination.js";
import type { Clock } from "../host/clock.js";
import { HoldfastError } from "../host/errors.js";
import type { Logger } from "../host/logger.js";
import { open, seal } from "./blob-codec.js";
import { BlobPool, sharedCopy } from "./blob-pool.js";
import { Chunker } from "./chunker.js";
import { compress, decompress } from "./compression.js";
import { DEFAULT_SCRYPT, deriveKey, RepositoryKeys, type ScryptParams, sha256Hex } from "./crypto.js";
import { type BlobType, CHUNKER_DEFAULTS, FORMAT_VERSION, hashOfKey, KEY_PREFIX, packKey } from "./format.js";
import { type IndexFile, type IndexLock, type IndexPack, MasterIndex } from "./index-file.js";
import { ObjectReader } from "./object-reader.js";
import { PackBuilder, readPackHeader, sharedBuffer } from "./pack.js";
import type { Snapshot, SnapshotRef } from "./snapshot.js";
import { parseTree, serializeTree, type Tree } from "./tree.js";

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
}

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
	#pack: PackBuilder;
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

	private constructor(
		readonly options: RepositoryOptions,
		readonly keys: RepositoryKeys,
		readonly config: RepositoryConfig,
	) {
		this.reader = new ObjectReader(options.destination);
		this.chunker = new Chunker(keys.chunkerSeed, config.chunker);
		this.#uploads = pLimit(options.uploadConcurrency ?? 2);
		this.#pool = new BlobPool({ ...keys.raw, chunkerSeed: keys.chunkerSeed, chunker: config.chunker });
		this.#pack = this.#newPack();
	}

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
	 * own collector runs, so fresh ones would pile up.
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

	static async exists(destination: Destination): Promise<boolean> {
		return (await listKeys(destination, KEY_PREFIX.config)).length > 0;
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
		await repository.addPassword(password, lock);
		await repository.#writeConfig();
		// Records the config's and key file's versions and locks, so later runs can extend them.
		await repository.writeIndex([]);
		return repository;
	}

	static async open(password: string, options: RepositoryOptions): Promise<Repository> {
		const { destination } = options;
		const keyKeys: string[] = [];
		keyKeys.push(...(await listKeys(destination, KEY_PREFIX.keys)));
		if (keyKeys.length === 0) {
			throw new HoldfastError("NO_REPOSITORY", `no repository at ${destination.description} (run "holdfast init" first)`);
		}
		let master: Buffer | undefined;
		for (const key of keyKeys) {
			try {
				const bytes = await new ObjectReader(destination).read(key, async (verified) => verified);
				master = await unwrapKeyFile(bytes, password, key);
				break;
			} catch (error) {
				if (error instanceof HoldfastError && error.code === "WRONG_PASSWORD") continue;
				options.logger.debug(`key ${key}: ${(error as Error).message}`);
			}
		}
		if (!master) throw new HoldfastError("WRONG_PASSWORD", `wrong password for the repository at ${destination.description}`);
		const keys = RepositoryKeys.fromMaster(master);
		const configKeys: string[] = [];
		configKeys.push(...(await listKeys(destination, KEY_PREFIX.config)));
		let config: RepositoryConfig | undefined;
		for (const key of configKeys) {
			try {
				config = await new ObjectReader(destination).read(
					key,
					async (bytes) => JSON.parse(decompress(await keys.open(bytes, key), key).toString("utf8")) as RepositoryConfig,
				);
				break;
			} catch (error) {
				options.logger.debug(`${key}: ${(error as Error).message}`);
			}
		}
		if (!config) throw new HoldfastError("CORRUPT", `no readable repository config at ${destination.description}`);
		if (config.v !== FORMAT_VERSION) {
			throw new HoldfastError(
				"CORRUPT",
				`repository format ${String(config.v)} is not supported (this holdfast reads ${FORMAT_VERSION})`,
			);
		}
		const repository = new Repository(options, keys, config);
		repository.#metadata = [...configKeys, ...keyKeys];
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
	 * For stores that cannot extend locks: writes a fresh copy of the config and of this
	 * password's key file when no copy is locked until `minLock` (the re-include of metadata).
	 */
	async renewMetadata(password: string, minLock: Date): Promise<string[]> {
		const lockedLongEnough = (prefix: string) =>
			this.#metadata.some((key) => key.startsWith(prefix) && (this.index.lockUntil(key)?.getTime() ?? 0) >= minLock.getTime());
		const written: string[] = [];
		if (!lockedLongEnough(KEY_PREFIX.config)) written.push(await this.#writeConfig());
		if (!lockedLongEnough(KEY_PREFIX.keys)) written.push(await this.addPassword(password, this.#requireLock()));
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
		return key;
	}

	// ---- index ---------------------------------------------------------------------------

	/** Lists `index/` and merges every index object; verified content is cached in the catalog. */
	async loadIndex(): Promise<void> {
		this.index = new MasterIndex();
		const keys = await listKeys(this.destination, KEY_PREFIX.index);
		const limit = pLimit(8);
		const files = await Promise.all(
			keys.map((key) =>
				limit(() =>
					this.#readIndexFile(key).catch((error: unknown) => {
						// Garbage under a name of its own (an attacker can add objects): not ours, skipped.
						this.options.logger.warn(`${key}: ${(error as Error).message}`);
						return undefined;
					}),
				),
			),
		);
		// Merge oldest first so tombstones from grooming apply after what they remove.
		const ordered = keys.flatMap((key, i) => (files[i] ? [{ key, file: files[i] as IndexFile }] : []));
		ordered.sort((a, b) => a.file.created.localeCompare(b.file.created) || a.key.localeCompare(b.key));
		for (const { key, file } of ordered) this.index.add(key, file);
		// Metadata no index recorded (an interrupted init): its lock is learned when first extended.
		for (const key of this.#metadata) if (!this.index.locks.has(key)) this.index.noteLock(key, "compliance", new Date(0));
	}

	async #readIndexFile(key: string): Promise<IndexFile> {
		const cacheKey = `index:${this.id}:${key}`;
		const cached = (await this.options.catalog?.get(cacheKey)) as IndexFile | undefined;
		if (cached) return cached;
		const file = await this.reader.read(key, (bytes) => this.#openJson<IndexFile>(bytes, key));
		await this.options.catalog?.set(cacheKey, file);
		return file;
	}

	// ---- writing ---------------------------------------------------------------------------

	/**
	 * Stores a blob unless a copy exists that is locked at least until `minLock`.
	 * Returns its ID and whether bytes were added.
	 */
	async saveBlob(type: BlobType, data: Uint8Array, minLock?: Date): Promise<{ id: string; added: boolean }> {
		const shared = data.buffer instanceof SharedArrayBuffer ? data : sharedCopy(data);
		const whole = new Uint32Array([0, shared.length]);
		const [id] = (await this.#pool.hash(shared, whole)) as [string];
		if (!this.claimBlob(id, minLock)) {
			await this.#pending.get(id);
			return { id, added: false };
		}
		try {
			const [sealed] = (await this.#pool.seal(shared, whole, this.compression)) as [Uint8Array];
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
		const known = this.index.blobs.get(id);
		if (known && (!minLock || (this.index.lockUntil(known.packKey)?.getTime() ?? 0) >= minLock.getTime())) return false;
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

	/** Appends a claimed, sealed blob to the open pack; a full pack starts uploading (waiting while the uploader is busy). */
	async addSealedBlob(type: BlobType, id: string, sealed: Uint8Array, rawLength: number): Promise<void> {
		if (this.#pack.count > 0 && !this.#pack.fits(sealed.length)) await this.#startPackUpload();
		this.#pack.add(type, id, sealed, rawLength);
		this.#pending.get(id)?.done();
		if (this.#pack.size >= this.#packSize) await this.#startPackUpload();
	}

	async #startPackUpload(): Promise<void> {
		if (this.#pack.count === 0) return;
		const builder = this.#pack;
		this.#pack = this.#newPack();
		// Bound the packs held in memory: wait while every upload slot is busy.
		while (this.#inflight.size >= (this.options.uploadConcurrency ?? 2)) await Promise.race(this.#inflight);
		const task = this.#uploads(async () => {
			const { hash, bytes, blobs } = await builder.finish(this.keys, (data) => this.#pool.digest(data));
			const key = packKey(hash);
			const lock = this.#requireLock();
			const version = await this.#put(key, bytes, "pack");
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
			this.#stats.packs++;
			if (this.#unindexed.length >= PACKS_PER_INDEX) await this.writeIndex([]);
		});
		const tracked = task.finally(() => this.#inflight.delete(tracked));
		this.#inflight.add(tracked);
	}

	/** Writes the open pack and waits for every upload. */
	async flushPacks(): Promise<void> {
		await this.#startPackUpload();
		while (this.#inflight.size > 0) await Promise.all([...this.#inflight]);
	}

	/** Writes an index object for packs not yet indexed plus the given lock records. */
	async writeIndex(locks: IndexLock[], extra: { deleted?: string[]; forgotten?: string[] } = {}): Promise<string | undefined> {
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
		if (packs.length === 0 && locks.length === 0 && !extra.deleted && !extra.forgotten) return undefined;
		const lock = this.#requireLock();
		const file: IndexFile = {
			v: 1,
			created: this.options.clock.now().toISOString(),
			packs,
			locks,
			self: { mode: lock.mode, until: lock.until.toISOString() },
			...(extra.deleted ? { deleted: extra.deleted } : {}),
			...(extra.forgotten ? { forgotten: extra.forgotten } : {}),
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
		if (extra.deleted || extra.forgotten) this.index.noteCarrier(key, file.created);
		for (const d of extra.deleted ?? []) this.index.deleted.add(d);
		for (const f of extra.forgotten ?? []) this.index.forgotten.add(f);
		await this.options.catalog?.set(`index:${this.id}:${key}`, file);
		return key;
	}

	async saveTree(tree: Tree, minLock?: Date): Promise<{ id: string; added: boolean }> {
		return this.saveBlob("tree", serializeTree(tree), minLock);
	}

	async saveSnapshot(snapshot: Snapshot): Promise<SnapshotRef> {
		const sealed = await this.#sealJson(snapshot);
		const id = sha256Hex(sealed);
		const key = `${KEY_PREFIX.snapshots}${id}`;
		await this.#put(key, sealed, "snapshot");
		await this.options.catalog?.set(`snapshot:${this.id}:${key}`, snapshot);
		return { id, key, snapshot };
	}

	async #put(key: string, bytes: Buffer, kind: "pack" | "index" | "snapshot" | "config"): Promise<string | undefined> {
		const lock = this.#requireLock();
		const { versionId } = await this.destination.put(key, bytes, lock);
		this.index.noteLock(key, lock.mode, lock.until);
		if (versionId) this.index.versions.set(key, versionId);
		if (kind !== "pack") this.#unrecorded.push(key);
		this.#writtenThisRun.push(key);
		this.#stats.bytesUploaded += bytes.length;
		this.#stats.objects++;
		return versionId || undefined;
	}

	#requireLock(): ObjectLock {
		if (!this.writeLock) throw new Error("internal: no lock set for writing");
		return this.writeLock;
	}

	beginRun(lock: ObjectLock): void {
		this.writeLock = lock;
		this.#writtenThisRun = [];
		this.#unrecorded = [];
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
			if (version.key === key && !version.isDeleteMarker) candidates.push(version.versionId);
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

	async listSnapshots(): Promise<SnapshotRef[]> {
		const refs: SnapshotRef[] = [];
		const keys = await listKeys(this.destination, KEY_PREFIX.snapshots);
		const limit = pLimit(8);
		await Promise.all(
			keys.map((key) =>
				limit(async () => {
					const id = key.slice(KEY_PREFIX.snapshots.length);
					if (this.index.forgotten.has(id) || this.index.deleted.has(key)) return;
					try {
						refs.push({ id, key, snapshot: await this.loadSnapshotObject(key) });
					} catch (error) {
						this.options.logger.warn(`${key}: ${(error as Error).message}`);
					}
				}),
			),
		);
		refs.sort((a, b) => a.snapshot.time.localeCompare(b.snapshot.time) || a.id.localeCompare(b.id));
		return refs;
	}

	async loadSnapshotObject(key: string): Promise<Snapshot> {
		const cacheKey = `snapshot:${this.id}:${key}`;
		const cached = (await this.options.catalog?.get(cacheKey)) as Snapshot | undefined;
		if (cached) return cached;
		const snapshot = await this.reader.read(key, (bytes) => this.#openJson<Snapshot>(bytes, key));
		await this.options.catalog?.set(cacheKey, snapshot);
		return snapshot;
	}

	/** Reads, decrypts, decompresses and verifies one blob. */
	async loadBlob(id: string, options: { wholePack?: boolean } = {}): Promise<Buffer> {
		const location = this.index.blobs.get(id);
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

	/** Decrypts, decompresses and verifies one sealed blob (on the pool's threads). */
	async decodeBlob(sealed: Uint8Array, id: string, what: string): Promise<Buffer> {
		const plain = await this.#pool.decode(sealed, id, what);
		return Buffer.from(plain.buffer, plain.byteOffset, plain.byteLength);
	}

	async loadTree(id: string): Promise<Tree> {
		return parseTree(await this.loadBlob(id, { wholePack: true }));
	}

	async readPackBlobs(key: string, bytes: Buffer) {
		return readPackHeader(this.keys, bytes, key);
	}

	async #sealJson(value: unknown): Promise<Buffer> {
		return this.keys.seal(compress(Buffer.from(JSON.stringify(value)), true));
	}

	async #openJson<T>(bytes: Buffer, what: string): Promise<T> {
		return JSON.parse(decompress(await this.keys.open(bytes, what), what).toString("utf8")) as T;
	}
}

/**
 * Keys under a prefix that have at least one real version. Versions, not the plain listing:
 * an attacker's delete markers hide objects from a listing, not from us.
 */
export async function listKeys(destination: Destination, prefix: string): Promise<string[]> {
	const keys = new Set<string>();
	for await (const version of destination.listVersions(prefix)) if (!version.isDeleteMarker) keys.add(version.key);
	return [...keys].sort();
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
