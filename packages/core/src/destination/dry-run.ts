import type { Catalog } from "../catalog/catalog.js";
import type { Destination, FileUpload, ObjectLock, PreflightRequest } from "./destination.js";
import { DestinationWrapper } from "./destination-wrapper.js";
import type { KeyRole } from "./doctor.js";

/** What a dry run would have done to the store. */
export interface DryRunCounts {
	/** Objects that would be written, and their bytes. */
	puts: number;
	bytes: number;
	/** Lock extensions that would be asked for. */
	extensions: number;
	/** Versions that would be deleted, and delete markers that would be added. */
	deletes: number;
	markers: number;
}

/**
 * A dry run's destination, as restic's `dryrun` backend: reads reach the store, writes are
 * counted and never sent, so no step of a dry run can change the store whatever it calls.
 */
export class DryRunDestination extends DestinationWrapper {
	readonly counts: DryRunCounts = { puts: 0, bytes: 0, extensions: 0, deletes: 0, markers: 0 };

	/** Checks without preparing: a dry run creates no bucket or folder. */
	override preflight(request: PreflightRequest) {
		return this.store.preflight({ ...request, create: false });
	}

	override async put(_key: string, body: Uint8Array, _lock?: ObjectLock): Promise<{ versionId: string }> {
		this.counts.puts++;
		this.counts.bytes += body.byteLength;
		// An empty version ID: the repository records none for an object it did not store.
		return { versionId: "" };
	}

	/** Counted by the size it was told: the file is not even read. */
	override async putFile({ size }: FileUpload): Promise<{ versionId: string }> {
		this.counts.puts++;
		this.counts.bytes += size;
		return { versionId: "" };
	}

	override async extendLock(_key: string, _versionId: string, _lock: ObjectLock): Promise<void> {
		this.counts.extensions++;
	}

	override async deleteVersion(_key: string, _versionId: string, _options?: { bypassGovernance?: boolean }): Promise<void> {
		this.counts.deletes++;
	}

	override async deleteMarker(_key: string): Promise<void> {
		this.counts.markers++;
	}

	override withKey(role: KeyRole): Destination | undefined {
		const keyed = this.store.withKey?.(role);
		return keyed && new DryRunDestination(keyed);
	}

	// The store is the session's: the run that opened it closes it.
	override async close(): Promise<void> {}
}

/** Keyv's calls that change the catalog, and the byte values its store keeps beside it. */
const CATALOG_WRITES = new Set<PropertyKey>(["set", "setMany", "delete", "deleteMany", "clear", "setBytes"]);

/**
 * The catalog as a dry run sees it: reads hit it, writes are dropped, so a dry run caches
 * nothing about objects it never stored.
 */
export function readOnlyCatalog(catalog: Catalog): Catalog {
	return readOnly(catalog, (target, property) => {
		const value = Reflect.get(target, property, target);
		// The cache writes byte values to the store underneath Keyv: that store is read-only too.
		return property === "store" && value && typeof value === "object" ? readOnly(value, Reflect.get) : value;
	});
}

function readOnly<T extends object>(subject: T, read: (target: T, property: PropertyKey) => unknown): T {
	return new Proxy(subject, {
		get(target, property) {
			if (CATALOG_WRITES.has(property)) return async () => true;
			const value = read(target, property);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
}
