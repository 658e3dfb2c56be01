import type { DestinationCapabilities } from "../destination/destination.js";
import { isRepositoryObjectKey, KEY_PREFIX } from "../repository/format.js";
import type { Repository } from "../repository/repository.js";
import type { SnapshotListing, SnapshotRef, UnreadableObject } from "../repository/snapshot.js";
import { collectSnapshotObjects, metadataFor, type SnapshotObjects } from "./snapshot-objects.js";

/** The destination as a tap sees it: what it is, and what it can do. */
export interface DestinationView {
	/** For messages: `fs:/backups/office`, `b2:acme`. */
	readonly description: string;
	readonly capabilities: DestinationCapabilities;
}

/** One stored object, by all its versions (delete markers aside). */
export interface StoredObject {
	/** Every version's bytes: deleting the object frees them all. */
	readonly bytes: number;
	/** The newest version's write. */
	readonly newest: Date;
	/**
	 * Every version is bytes a crash cut off before the record that makes them a version: no
	 * reader takes them for the object, so they vouch for nothing and go like any leak.
	 */
	readonly incomplete: boolean;
}

/** What the merged index records, as grooming weighs it: read-only. */
export interface IndexSummary {
	/** Packs the index lists: their bytes and the index object that lists them. */
	readonly packs: ReadonlyMap<string, { readonly size: number; readonly indexKey: string | undefined }>;
	/** Every readable index object. */
	readonly indexObjects: ReadonlySet<string>;
	/** Snapshots an earlier groom forgot while their objects were still locked. */
	readonly forgotten: ReadonlySet<string>;
	/** Objects an earlier groom decided to delete (tombstoned) and that may still be stored. */
	readonly tombstoned: ReadonlySet<string>;
	/** The newest groom index object: it carries the records in force, so it stays. */
	readonly newestCarrier: string | undefined;
	/** Bytes of blobs no snapshot uses (not in `needed`), in packs that stay (not in `leaving`). */
	deadBytes(needed: ReadonlySet<string>, leaving: ReadonlySet<string>): number;
}

/**
 * What a tap may read of the repository, and nothing it could change: the snapshots, what each
 * needs, what is stored and what the index says of it. Writes go through a hook's return value.
 */
export interface RepositoryView {
	readonly destination: DestinationView;
	/** Every snapshot in the repository, and the snapshot objects that could not be read. */
	readSnapshots(): Promise<SnapshotListing>;
	/** Index objects this run could not read: what they record is unknown. */
	readonly unreadableIndex: readonly UnreadableObject[];
	/** What a snapshot needs to restore; pass one `seenTrees` to walk trees shared by many snapshots once. */
	snapshotObjects(ref: SnapshotRef, seenTrees?: Map<string, Set<string>>): Promise<SnapshotObjects>;
	/** Every object stored under `data/`, `index/` and `snapshots/`, packs no index lists included. */
	storedObjects(): Promise<ReadonlyMap<string, StoredObject>>;
	readonly index: IndexSummary;
}

/** The view of an open repository a run's hooks get; it follows the index the run loaded. */
export function repositoryView(repository: Repository): RepositoryView {
	const index: IndexSummary = {
		get packs() {
			return repository.index.packs;
		},
		get indexObjects() {
			return repository.index.indexKeys;
		},
		get forgotten() {
			return repository.index.forgotten;
		},
		get tombstoned() {
			return repository.index.deleted;
		},
		get newestCarrier() {
			return repository.index.newestCarrier?.key;
		},
		deadBytes(needed, leaving) {
			let bytes = 0;
			for (const [id, location] of repository.index.blobs) {
				if (!needed.has(id) && !leaving.has(location.packKey)) bytes += location.length;
			}
			return bytes;
		},
	};
	return Object.freeze({
		destination: Object.freeze({
			description: repository.destination.description,
			// A copy, frozen through: the store's own object stays out of a plugin's reach.
			capabilities: frozenCopy(repository.destination.capabilities),
		}),
		readSnapshots: () => repository.readSnapshots(),
		get unreadableIndex() {
			return repository.unreadableIndex;
		},
		snapshotObjects: (ref: SnapshotRef, seenTrees?: Map<string, Set<string>>) =>
			collectSnapshotObjects(repository, ref, metadataFor(repository), seenTrees),
		storedObjects: () => storedObjects(repository),
		index: Object.freeze(index),
	});
}

/** A deep copy, frozen through: what a plugin is shown of an object the core keeps using. */
export function frozenCopy<T>(value: T): T {
	if (typeof value !== "object" || value === null) return value;
	const copy = (
		Array.isArray(value) ? value.map(frozenCopy) : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, frozenCopy(v)]))
	) as T;
	return Object.freeze(copy);
}

/** Listed by versions, so packs no index object lists (a killed backup's) and tombstoned objects are found too. */
async function storedObjects(repository: Repository): Promise<Map<string, StoredObject>> {
	const stored = new Map<string, { bytes: number; newest: Date; incomplete: boolean }>();
	for (const prefix of [KEY_PREFIX.data, KEY_PREFIX.index, KEY_PREFIX.snapshots]) {
		for await (const version of repository.destination.listVersions(prefix)) {
			if (version.isDeleteMarker || !isRepositoryObjectKey(version.key)) continue;
			const incomplete = version.incomplete === true;
			const known = stored.get(version.key);
			if (!known) stored.set(version.key, { bytes: version.size, newest: version.lastModified, incomplete });
			else {
				known.bytes += version.size;
				if (version.lastModified > known.newest) known.newest = version.lastModified;
				known.incomplete &&= incomplete;
			}
		}
	}
	return stored;
}
