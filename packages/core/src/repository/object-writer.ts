import type { Destination, FileDigests, ObjectLock } from "../destination/destination.js";
import { putFromFile } from "../destination/put-file.js";
import type { UploadedObject } from "../engine/run-types.js";
import type { MasterIndex } from "./index-file.js";

// Every object a run writes carries the run's lock and is remembered (lock, version) until an index object records it.

export interface WriteStats {
	packs: number;
	bytesUploaded: number;
	objects: number;
}

export class ObjectWriter {
	/** The lock every object written from now on carries; the engine sets it per run. */
	writeLock: ObjectLock | undefined;
	#writtenThisRun: string[] = [];
	/** Objects other than packs written since the last index object: recorded (with versions) in the next. */
	#unrecorded: string[] = [];
	readonly stats: WriteStats = { packs: 0, bytesUploaded: 0, objects: 0 };

	constructor(
		readonly destination: Destination,
		/** The index of the moment: `loadIndex` replaces it whole. */
		private readonly index: () => MasterIndex,
		private readonly onObjectWritten: ((object: UploadedObject) => void) | undefined,
	) {}

	/** Keys of objects written since the run began (for the lock and audit steps). */
	get writtenThisRun(): readonly string[] {
		return this.#writtenThisRun;
	}

	requireLock(): ObjectLock {
		if (!this.writeLock) throw new Error("internal: no lock set for writing");
		return this.writeLock;
	}

	/** Writes one object under `lock` and notes its lock and version; key files do not count as uploaded bytes. */
	async put(key: string, bytes: Buffer, kind: UploadedObject["kind"], lock = this.requireLock()): Promise<string | undefined> {
		const { versionId } = await this.destination.put(key, bytes, lock);
		this.#written(key, bytes.length, kind, lock, versionId);
		return versionId || undefined;
	}

	/**
	 * Writes one object whose bytes are the file at `path` (`size` bytes), as `put`: a store
	 * that can take a file (`putFile`) reads it, one that cannot gets it read into memory.
	 */
	async putFile(
		key: string,
		path: string,
		size: number,
		kind: UploadedObject["kind"],
		lock = this.requireLock(),
		digests?: FileDigests,
	): Promise<string | undefined> {
		const { versionId } = await putFromFile(this.destination, { key, path, size, lock, ...(digests ? { digests } : {}) });
		this.#written(key, size, kind, lock, versionId);
		return versionId || undefined;
	}

	#written(key: string, size: number, kind: UploadedObject["kind"], lock: ObjectLock, versionId: string): void {
		const index = this.index();
		index.noteLock(key, lock.mode, lock.until);
		if (versionId) index.versions.set(key, versionId);
		if (kind !== "pack") this.#unrecorded.push(key);
		this.#writtenThisRun.push(key);
		if (kind !== "key") {
			this.stats.bytesUploaded += size;
			this.stats.objects++;
		}
		this.onObjectWritten?.({ key, size, lock, kind });
	}

	/** The objects the next index object records; taking them empties the list. */
	takeUnrecorded(): string[] {
		const keys = this.#unrecorded;
		this.#unrecorded = [];
		return keys;
	}

	beginRun(lock: ObjectLock): void {
		this.writeLock = lock;
		this.#writtenThisRun = [];
		this.stats.packs = 0;
		this.stats.bytesUploaded = 0;
		this.stats.objects = 0;
	}
}
