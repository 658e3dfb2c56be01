import type { Clock } from "../host/clock.js";
import {
	type Destination,
	type FileUpload,
	LockRefusedError,
	type ObjectLock,
	ObjectNotFoundError,
	type ObjectVersion,
} from "./destination.js";
import { DestinationWrapper } from "./destination-wrapper.js";
import type { KeyRole } from "./doctor.js";

/**
 * A store without Object Lock of its own (a folder, memory): it declares
 * `capabilities.enforcedByProvider: false`, keeps the lock it is given beside each version
 * and reports it from `head` and `listVersions`, and does what it is told — `extendLock` writes
 * the record, `deleteVersion` deletes. The core wraps it in {@link EmulatedLocks}, which
 * refuses what S3 Object Lock would refuse.
 */
export interface LockRecordStore extends Destination {
	/**
	 * Runs `body` while no other process judges or changes this version's lock record: the
	 * read, compare and write of a lock must be one step (S3 decides it server-side). Without
	 * it, versions are guarded within this process only.
	 */
	exclusive?<T>(key: string, versionId: string, body: () => Promise<T>): Promise<T>;
}

/**
 * Object Lock emulated over a {@link LockRecordStore}, with the lock clock taken from the
 * core's Clock: a write locked into the past, a shortened lock, compliance turned into
 * governance and the deletion of a locked version are refused as S3 refuses them. This stops
 * mistakes and scripts, not whoever can write the store behind it.
 */
export class EmulatedLocks extends DestinationWrapper<LockRecordStore> {
	readonly #guards = new Map<string, Promise<unknown>>();

	constructor(
		store: LockRecordStore,
		readonly clock: Clock,
	) {
		super(store);
	}

	override async put(key: string, body: Uint8Array, lock?: ObjectLock): Promise<{ versionId: string }> {
		this.#refusePastLock(key, lock);
		return this.store.put(key, body, lock);
	}

	override async putFile(upload: FileUpload): Promise<{ versionId: string }> {
		this.#refusePastLock(upload.key, upload.lock);
		return super.putFile(upload);
	}

	#refusePastLock(key: string, lock: ObjectLock | undefined): void {
		if (lock && lock.until.getTime() <= this.clock.now().getTime()) {
			throw new Error(`${key}: retain-until ${lock.until.toISOString()} is in the past`);
		}
	}

	override async extendLock(key: string, versionId: string, lock: ObjectLock): Promise<void> {
		await this.#guarded(key, versionId, async () => {
			const current = (await this.#version(key, versionId)).lock;
			if (current && current.until.getTime() > lock.until.getTime()) {
				throw new LockRefusedError(`${key} (${versionId}): a ${current.mode} lock cannot be shortened`);
			}
			if (current?.mode === "compliance" && lock.mode === "governance") {
				throw new LockRefusedError(`${key} (${versionId}): compliance cannot become governance`);
			}
			await this.store.extendLock(key, versionId, lock);
		});
	}

	override async deleteVersion(key: string, versionId: string, options: { bypassGovernance?: boolean } = {}): Promise<void> {
		// Judged under the guard, so a lock another writer extended meanwhile is the one judged.
		await this.#guarded(key, versionId, async () => {
			const { lock } = await this.#version(key, versionId);
			if (lock && lock.until.getTime() > this.clock.now().getTime()) {
				if (!(lock.mode === "governance" && options.bypassGovernance)) {
					throw new LockRefusedError(`${key} (${versionId}): locked (${lock.mode}) until ${lock.until.toISOString()}`);
				}
			}
			await this.store.deleteVersion(key, versionId, options);
		});
	}

	override withKey(role: KeyRole): Destination | undefined {
		const keyed = this.store.withKey?.(role);
		return keyed && emulateLocks(keyed, this.clock);
	}

	async #version(key: string, versionId: string): Promise<ObjectVersion> {
		const version = await this.store.head(key, versionId);
		if (!version) throw new ObjectNotFoundError(`${key} (${versionId})`);
		return version;
	}

	/** The store's guard across processes when it has one; one version's calls in turn within this process always. */
	async #guarded<T>(key: string, versionId: string, body: () => Promise<T>): Promise<T> {
		const id = `${key}\0${versionId}`;
		const step = () => (this.store.exclusive ? this.store.exclusive(key, versionId, body) : body());
		// The previous call's settled promise: it never rejects, so each call waits for the one before.
		const run = (this.#guards.get(id) ?? Promise.resolve()).then(step);
		const settled = run.catch(() => undefined);
		this.#guards.set(id, settled);
		try {
			return await run;
		} finally {
			if (this.#guards.get(id) === settled) this.#guards.delete(id);
		}
	}
}

/**
 * The store as the core uses it: a store that enforces Object Lock itself is used as it is,
 * one that does not (`enforcedByProvider: false`) gets its locks emulated — once.
 */
export function emulateLocks(store: Destination, clock: Clock): Destination {
	if (store.capabilities.enforcedByProvider || store instanceof EmulatedLocks) return store;
	return new EmulatedLocks(store, clock);
}
