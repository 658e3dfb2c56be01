import {
	type ByteRange,
	type DestinationCapabilities,
	type DestinationCheck,
	type ListedObject,
	type ObjectLock,
	ObjectNotFoundError,
	type ObjectVersion,
} from "../destination/destination.js";
import { EmulatedLocks, type LockRecordStore } from "../destination/lock-emulation.js";
import type { Clock } from "../host/clock.js";

export interface StoredVersion {
	versionId: string;
	body: Buffer | undefined;
	lastModified: Date;
	lock?: ObjectLock;
}

/**
 * A versioned, lock-enforcing destination in memory, for plugin authors' tests and the core's
 * own: a {@link MemoryStore} behind the core's lock emulation, so it follows S3 Object Lock
 * semantics with the lock clock taken from the given Clock.
 */
export class MemoryDestination extends EmulatedLocks {
	declare readonly store: MemoryStore;

	constructor(clock: Clock, capabilities: Partial<DestinationCapabilities> = {}) {
		super(new MemoryStore(clock, capabilities), clock);
	}

	/** Every key's versions, newest first (tests tamper with them as an attacker would). */
	get objects(): Map<string, StoredVersion[]> {
		return this.store.objects;
	}

	/** Calls that reached the store, by kind. */
	get calls(): MemoryStore["calls"] {
		return this.store.calls;
	}
}

/** A map that keeps its keys sorted for listing, sorted again only after a key came or went: simulations list thousands of times. */
class SortedKeys<V> extends Map<string, V> {
	#sorted: string[] | undefined;

	override set(key: string, value: V): this {
		if (!this.has(key)) this.#sorted = undefined;
		return super.set(key, value);
	}

	override delete(key: string): boolean {
		this.#sorted = undefined;
		return super.delete(key);
	}

	override clear(): void {
		this.#sorted = undefined;
		super.clear();
	}

	sortedKeys(): readonly string[] {
		this.#sorted ??= [...this.keys()].sort();
		return this.#sorted;
	}

	/** The sorted keys that start with `prefix`: found by bisection, since a listing by prefix skips most keys. */
	keysStartingWith(prefix: string): readonly string[] {
		const sorted = this.sortedKeys();
		let low = 0;
		let high = sorted.length;
		while (low < high) {
			const middle = (low + high) >>> 1;
			if ((sorted[middle] as string) < prefix) low = middle + 1;
			else high = middle;
		}
		let end = low;
		while (end < sorted.length && (sorted[end] as string).startsWith(prefix)) end++;
		return sorted.slice(low, end);
	}
}

/** Versions in memory with their lock records, kept as told: the store a {@link MemoryDestination} wraps. */
export class MemoryStore implements LockRecordStore {
	readonly objects = new SortedKeys<StoredVersion[]>();
	readonly calls = { put: 0, get: 0, head: 0, list: 0, extend: 0, delete: 0 };
	readonly capabilities: DestinationCapabilities;
	#sequence = 0;

	constructor(
		private readonly clock: Clock,
		capabilities: Partial<DestinationCapabilities> = {},
		/** Names the store in messages, as a folder's path or a bucket's name does. */
		readonly description = "memory:",
	) {
		this.capabilities = {
			enforcedByProvider: false,
			lockExtension: true,
			maxRetentionDays: 36_500,
			...capabilities,
		};
	}

	async preflight(): Promise<DestinationCheck> {
		return { ok: true, problems: [], notes: [] };
	}

	async put(key: string, body: Uint8Array, lock?: ObjectLock): Promise<{ versionId: string }> {
		this.calls.put++;
		const versionId = String(++this.#sequence).padStart(12, "0");
		const versions = this.#versionsOf(key);
		versions.unshift({ versionId, body: Buffer.from(body), lastModified: this.clock.now(), ...(lock ? { lock } : {}) });
		return { versionId };
	}

	#find(key: string, versionId?: string): StoredVersion | undefined {
		const versions = this.objects.get(key) ?? [];
		return versionId ? versions.find((v) => v.versionId === versionId) : versions[0];
	}

	async get(key: string, options: { versionId?: string; range?: ByteRange } = {}): Promise<Uint8Array> {
		this.calls.get++;
		const version = this.#find(key, options.versionId);
		if (!version?.body) throw new ObjectNotFoundError(key);
		const { range } = options;
		// A copy, as a real store's read is: a reader may decrypt or decompress in place.
		return Buffer.from(range ? version.body.subarray(range.offset, range.offset + range.length) : version.body);
	}

	async head(key: string, versionId?: string): Promise<ObjectVersion | undefined> {
		this.calls.head++;
		const version = this.#find(key, versionId);
		if (!version || (!versionId && !version.body)) return undefined;
		return this.#describe(key, version, version === this.objects.get(key)?.[0]);
	}

	#describe(key: string, version: StoredVersion, isLatest: boolean): ObjectVersion {
		return {
			key,
			versionId: version.versionId,
			size: version.body?.length ?? 0,
			lastModified: version.lastModified,
			isDeleteMarker: !version.body,
			isLatest,
			...(version.lock ? { lock: version.lock } : {}),
		};
	}

	async *list(prefix: string): AsyncIterable<ListedObject> {
		this.calls.list++;
		for (const key of this.objects.keysStartingWith(prefix)) {
			const latest = this.objects.get(key)?.[0];
			if (latest?.body) yield { key, size: latest.body.length, lastModified: latest.lastModified };
		}
	}

	async *listVersions(prefix: string): AsyncIterable<ObjectVersion> {
		this.calls.list++;
		for (const key of this.objects.keysStartingWith(prefix)) {
			for (const [i, version] of (this.objects.get(key) ?? []).entries()) yield this.#describe(key, version, i === 0);
		}
	}

	async extendLock(key: string, versionId: string, lock: ObjectLock): Promise<void> {
		this.calls.extend++;
		const version = this.#find(key, versionId);
		if (!version) throw new ObjectNotFoundError(key);
		version.lock = lock;
	}

	async deleteVersion(key: string, versionId: string): Promise<void> {
		this.calls.delete++;
		const versions = this.objects.get(key) ?? [];
		const version = versions.find((v) => v.versionId === versionId);
		if (!version) throw new ObjectNotFoundError(key);
		versions.splice(versions.indexOf(version), 1);
		if (versions.length === 0) this.objects.delete(key);
	}

	async deleteMarker(key: string): Promise<void> {
		this.calls.delete++;
		const versions = this.#versionsOf(key);
		versions.unshift({ versionId: String(++this.#sequence).padStart(12, "0"), body: undefined, lastModified: this.clock.now() });
	}

	#versionsOf(key: string): StoredVersion[] {
		let versions = this.objects.get(key);
		if (!versions) this.objects.set(key, (versions = []));
		return versions;
	}
}
