import type { LockMode } from "../destination/destination.js";
import { BlobTable, type PackedBlobs, packBlobs } from "./blob-table.js";
import type { BlobType } from "./format.js";

/**
 * One index object (`index/<sha256>`): packs written by one run (or part of one), the locks
 * this run gave or extended, and what grooming removed. Merged, all index objects are the
 * repository's index; lock dates merge by maximum, since a lock only ever grows.
 */
export interface IndexFile {
	v: 1;
	created: string;
	packs: IndexPack[];
	/** Locks set on objects other than the packs above: extensions, snapshots, index objects, keys, config. */
	locks: IndexLock[];
	/** The lock this index object itself was written with. */
	self: { mode: LockMode; until: string };
	/** Packs and objects grooming deleted: dropped from the merged index. */
	deleted?: string[];
	/** Snapshots that left the set but could not yet be deleted (still locked). */
	forgotten?: string[];
	/** Index objects no version verified when this one was written (`repair index`): their packs are relisted here. */
	rebuilt?: string[];
	/**
	 * Objects grooming found unneeded and will delete in a later groom, with when each was first
	 * marked. The newest groom index object holds the whole current list; backups never reuse them.
	 */
	condemned?: CondemnedObject[];
}

export interface CondemnedObject {
	key: string;
	/** When grooming first marked it (ISO time): it may be deleted `graceHours` after this. */
	at: string;
}

export interface IndexPack {
	key: string;
	/** The version our PUT created: locks are extended and reads start on it, not on "latest". */
	version?: string;
	size: number;
	mode: LockMode;
	until: string;
	/** [type (0 data, 1 tree), id, offset, length, rawLength] */
	blobs: [number, string, number, number, number][];
}

/**
 * A pack entry as `loadIndex` keeps it until the merge: its blobs packed (`packBlobs`), or
 * left out (`packed` undefined) when the caller asked for no blob locations.
 */
export interface LoadedPack extends Omit<IndexPack, "blobs"> {
	readonly blobCount: number;
	readonly packed: PackedBlobs | undefined;
}

/** An index object as `loadIndex` holds it between reading and merging. */
export interface LoadedIndexFile extends Omit<IndexFile, "packs"> {
	packs: LoadedPack[];
}

/** The compact form of a verified index object; `withBlobs` false drops the blob entries. */
export function loadedIndexFile(file: IndexFile, withBlobs: boolean): LoadedIndexFile {
	return {
		...file,
		packs: file.packs.map(({ blobs, ...pack }) => ({
			...pack,
			blobCount: blobs.length,
			packed: withBlobs ? packBlobs(blobs) : undefined,
		})),
	};
}

export interface IndexLock {
	key: string;
	version?: string;
	mode: LockMode;
	until: string;
}

export interface BlobLocation {
	readonly type: BlobType;
	readonly packKey: string;
	readonly offset: number;
	readonly length: number;
	readonly rawLength: number;
}

export interface KnownLock {
	mode: LockMode;
	until: Date;
}

/** The merged in-memory index: where each blob is and until when each object is locked. */
export class MasterIndex {
	readonly #blobs = new BlobTable();
	/** False when loaded for a command that reads no blob (`snapshots`): any use of `blobs` is then a bug. */
	readonly withBlobs: boolean;

	constructor(options: { withBlobs?: boolean } = {}) {
		this.withBlobs = options.withBlobs ?? true;
	}

	get blobs(): BlobTable {
		if (!this.withBlobs) throw new Error("internal: this index was loaded without its blob locations");
		return this.#blobs;
	}
	/** `indexKey` is undefined while the pack is written but not yet listed by an index object. */
	readonly packs = new Map<string, { size: number; blobCount: number; indexKey: string | undefined }>();
	readonly locks = new Map<string, KnownLock>();
	readonly versions = new Map<string, string>();
	readonly indexKeys = new Set<string>();
	readonly deleted = new Set<string>();
	readonly forgotten = new Set<string>();
	/** Index objects written by grooming: tombstones and a consolidated copy of every lock record. */
	readonly tombstoneCarriers = new Set<string>();
	/** The newest of them, which holds the current records and must stay. */
	newestCarrier: { key: string; created: string } | undefined;
	/** Which packs each index object lists, deleted ones included (to know when a tombstone is still needed). */
	readonly listed = new Map<string, string[]>();
	/** Objects the newest groom index object marks for deletion, and since when: never deduplicated against. */
	condemned = new Map<string, Date>();

	add(indexKey: string, file: IndexFile | LoadedIndexFile): void {
		this.indexKeys.add(indexKey);
		this.listed.set(
			indexKey,
			file.packs.map((p) => p.key),
		);
		if (isCarrier(file)) this.noteCarrier(indexKey, file.created, file.condemned ?? []);
		for (const key of file.deleted ?? []) this.#drop(key);
		for (const id of file.forgotten ?? []) this.forgotten.add(id);
		this.noteLock(indexKey, file.self.mode, new Date(file.self.until));
		for (const pack of file.packs) this.addPack(pack, indexKey);
		const untils = lockEnds(file.locks);
		file.locks.forEach((lock, i) => {
			this.#noteLockAt(lock.key, lock.mode, untils[i] as number);
			if (lock.version) this.versions.set(lock.key, lock.version);
		});
	}

	noteCarrier(indexKey: string, created: string, condemned: readonly CondemnedObject[]): void {
		this.tombstoneCarriers.add(indexKey);
		if (!this.newestCarrier || this.newestCarrier.created <= created) {
			this.newestCarrier = { key: indexKey, created };
			// Each groom writes the whole list: the newest one replaces what earlier ones marked.
			this.condemned = new Map(condemned.map((c) => [c.key, new Date(c.at)]));
		}
	}

	/** Where a blob can be reused from: its indexed copy, unless grooming condemned that pack. */
	reusable(id: string): BlobLocation | undefined {
		const location = this.blobs.get(id);
		return location && !this.condemned.has(location.packKey) ? location : undefined;
	}

	/** Deleted keys some remaining index object (other than `leaving`) still lists: their tombstones must stay. */
	tombstonesStillNeeded(leaving: ReadonlySet<string>): string[] {
		const listedNow = new Set<string>();
		for (const [indexKey, packs] of this.listed) {
			if (!leaving.has(indexKey) && this.indexKeys.has(indexKey)) for (const pack of packs) listedNow.add(pack);
		}
		return [...this.deleted].filter((key) => listedNow.has(key));
	}

	addPack(pack: IndexPack | LoadedPack, indexKey: string | undefined): void {
		if (this.deleted.has(pack.key)) return;
		const blobCount = "blobs" in pack ? pack.blobs.length : pack.blobCount;
		this.packs.set(pack.key, { size: pack.size, blobCount, indexKey });
		const until = Date.parse(pack.until);
		this.#noteLockAt(pack.key, pack.mode, until);
		if (pack.version) this.versions.set(pack.key, pack.version);
		if (!this.withBlobs) return;
		// Keep the copy locked longest: re-included data supersedes the old copy.
		const keepsCurrent = (current: string | undefined): boolean =>
			current !== undefined && (this.lockUntil(current)?.getTime() ?? 0) >= until;
		const entries = "blobs" in pack ? pack.blobs : (pack.packed?.odd ?? []);
		for (const [type, id, offset, length, rawLength] of entries) {
			if (keepsCurrent(this.#blobs.get(id)?.packKey)) continue;
			this.#blobs.set(id, { type: type === 1 ? "tree" : "data", packKey: pack.key, offset, length, rawLength });
		}
		if ("blobs" in pack || !pack.packed) return;
		this.#blobs.setPacked(pack.packed, pack.key, keepsCurrent);
	}

	#drop(key: string): void {
		this.condemned.delete(key);
		this.deleted.add(key);
		this.locks.delete(key);
		this.indexKeys.delete(key);
		if (this.packs.delete(key)) this.#blobs.deletePack(key);
	}

	noteLock(key: string, mode: LockMode, until: Date): void {
		const known = this.locks.get(key);
		if (!known || known.until.getTime() < until.getTime()) this.locks.set(key, { mode, until });
	}

	/** `noteLock` for a time already in milliseconds: a Date is made only for a lock that is longer. */
	#noteLockAt(key: string, mode: LockMode, until: number): void {
		const known = this.locks.get(key);
		if (!known || known.until.getTime() < until) this.locks.set(key, { mode, until: new Date(until) });
	}

	/**
	 * The re-include threshold, decided here alone: whether blob `id`'s indexed copy is locked
	 * at least until `minLock` (no `minLock`: any copy will do). A copy locked for less is not reused.
	 */
	copyLockedUntil(id: string, minLock: Date | undefined): boolean {
		const location = this.blobs.get(id);
		if (!location) return false;
		return !minLock || (this.lockUntil(location.packKey)?.getTime() ?? 0) >= minLock.getTime();
	}

	lockUntil(key: string): Date | undefined {
		return this.locks.get(key)?.until;
	}
}

/**
 * The end of each lock record of an index object, parsed once while this process holds the
 * object: grooming's index objects carry every lock record, and each load merges them again.
 */
const parsedLockEnds = new WeakMap<readonly IndexLock[], Float64Array>();

function lockEnds(locks: readonly IndexLock[]): Float64Array {
	let ends = parsedLockEnds.get(locks);
	if (!ends) {
		ends = Float64Array.from(locks, (lock) => Date.parse(lock.until));
		parsedLockEnds.set(locks, ends);
	}
	return ends;
}

/** An index object written by grooming: it carries tombstones, forgotten snapshots or condemned objects. */
export function isCarrier(file: IndexFile | LoadedIndexFile): boolean {
	return file.deleted !== undefined || file.forgotten !== undefined || file.condemned !== undefined;
}
