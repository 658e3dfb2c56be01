import type {
	ByteRange,
	Destination,
	FileUpload,
	ListOptions,
	ObjectLock,
	ObjectVersion,
	PreflightRequest,
} from "./destination.js";
import type { KeyRole } from "./doctor.js";
import { readWholeFile } from "./put-file.js";

/**
 * A destination layered over another, as restic's backends wrap one another: every call goes
 * to the store beneath unless the layer overrides it. A layer says in `withKey` how it wraps
 * the store opened with another key, so that no key's store escapes the layers above it.
 */
export abstract class DestinationWrapper<S extends Destination = Destination> implements Destination {
	constructor(readonly store: S) {}

	get description(): string {
		return this.store.description;
	}

	get capabilities(): Destination["capabilities"] {
		return this.store.capabilities;
	}

	get localFolder(): string | undefined {
		return this.store.localFolder;
	}

	preflight(request: PreflightRequest) {
		return this.store.preflight(request);
	}

	put(key: string, body: Uint8Array, lock?: ObjectLock): Promise<{ versionId: string }> {
		return this.store.put(key, body, lock);
	}

	/**
	 * Always there: to the store's `putFile` when it has one, else the file read into memory
	 * and given to this layer's `put`, so a layer that overrides `put` alone still sees every
	 * write. A layer that changes how objects are written overrides both.
	 */
	async putFile(upload: FileUpload): Promise<{ versionId: string }> {
		if (this.store.putFile) return this.store.putFile(upload);
		return this.put(upload.key, await readWholeFile(upload), upload.lock);
	}

	get(key: string, options?: { versionId?: string; range?: ByteRange }): Promise<Uint8Array> {
		return this.store.get(key, options);
	}

	head(key: string, versionId?: string): Promise<ObjectVersion | undefined> {
		return this.store.head(key, versionId);
	}

	list(prefix: string, options?: ListOptions) {
		return this.store.list(prefix, options);
	}

	listVersions(prefix: string, options?: ListOptions) {
		return this.store.listVersions(prefix, options);
	}

	extendLock(key: string, versionId: string, lock: ObjectLock): Promise<void> {
		return this.store.extendLock(key, versionId, lock);
	}

	deleteVersion(key: string, versionId: string, options?: { bypassGovernance?: boolean }): Promise<void> {
		return this.store.deleteVersion(key, versionId, options);
	}

	deleteMarker(key: string): Promise<void> {
		return this.store.deleteMarker(key);
	}

	get doctor() {
		return this.store.doctor?.bind(this.store);
	}

	get inspectAccess() {
		return this.store.inspectAccess?.bind(this.store);
	}

	get missingEnvironment() {
		return this.store.missingEnvironment?.bind(this.store);
	}

	/** The same layer over the store opened with `role`'s key. */
	abstract withKey(role: KeyRole): Destination | undefined;

	async close(): Promise<void> {
		await this.store.close?.();
	}
}
