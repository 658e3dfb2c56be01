import { type CatalogCache, isRecord } from "../catalog/catalog-cache.js";
import type { Destination } from "../destination/destination.js";
import { classifyFault } from "../destination/faults.js";
import type { Logger } from "../host/logger.js";
import { concurrencyLimit } from "../host/semaphore.js";
import { type RepositoryKeys, sha256Hex } from "./crypto.js";
import { KEY_PREFIX } from "./format.js";
import type { IndexStore } from "./index-store.js";
import { reasonOf } from "./index-store.js";
import { openJson, sealJson } from "./key-store.js";
import type { ObjectReader } from "./object-reader.js";
import { firstWrites } from "./object-versions.js";
import type { ObjectWriter } from "./object-writer.js";
import type { Snapshot, SnapshotListing, SnapshotRef, UnreadableObject } from "./snapshot.js";

// The snapshot store: writes snapshot objects and lists the ones grooming has not forgotten, from the catalog when it has them.

export interface SnapshotStoreParts {
	readonly destination: Destination;
	readonly reader: ObjectReader;
	readonly keys: RepositoryKeys;
	readonly cache: CatalogCache | undefined;
	readonly repositoryId: string;
	readonly logger: Logger;
	readonly writer: ObjectWriter;
	readonly indexStore: IndexStore;
}

export class SnapshotStore {
	readonly #warned = new Set<string>();

	constructor(private readonly parts: SnapshotStoreParts) {}

	async saveSnapshot(snapshot: Snapshot): Promise<SnapshotRef> {
		const sealed = sealJson(this.parts.keys, snapshot);
		const id = sha256Hex(sealed);
		const key = `${KEY_PREFIX.snapshots}${id}`;
		await this.parts.writer.put(key, sealed, "snapshot");
		await this.parts.cache?.set(this.#cacheKey(key), snapshot);
		return { id, key, snapshot };
	}

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
		const written = await firstWrites(this.parts.destination, KEY_PREFIX.snapshots);
		const index = this.parts.indexStore.index;
		const limit = concurrencyLimit(8);
		await Promise.all(
			[...written.keys()].sort().map((key) =>
				limit(async () => {
					const id = key.slice(KEY_PREFIX.snapshots.length);
					if (index.forgotten.has(id) || index.deleted.has(key)) return;
					try {
						refs.push({ id, key, snapshot: await this.loadSnapshotObject(key, options), written: written.get(key) as Date });
					} catch (error) {
						if (classifyFault(error) === "unreachable") throw error;
						// Once per object and run, however often the snapshots are listed; the key once in the line.
						if (!this.#warned.has(key)) {
							this.#warned.add(key);
							const message = (error as Error).message;
							this.parts.logger.warn(message.startsWith(key) ? message : `${key}: ${message}`);
						}
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
		const { cache, keys } = this.parts;
		const cacheKey = this.#cacheKey(key);
		const cached = options.fresh ? undefined : await cache?.get(cacheKey, isSnapshot, { remember: true });
		if (cached) return cached;
		const snapshot = await this.parts.reader.read(key, async (bytes) => openJson<Snapshot>(keys, bytes, key));
		await cache?.set(cacheKey, snapshot);
		return snapshot;
	}

	#cacheKey(key: string): string {
		return `snapshot:${this.parts.repositoryId}:${key}`;
	}
}

/** The shape a verified cached snapshot must still have: a layout change without a tag change is a miss. */
function isSnapshot(value: unknown): value is Snapshot {
	return isRecord(value) && typeof value.time === "string" && typeof value.tree === "string";
}
