import type { Destination, ObjectVersion } from "../destination/destination.js";
import { sha256Hex } from "./crypto.js";
import { hashOfKey, isRepositoryObjectKey } from "./format.js";
import type { MasterIndex } from "./index-file.js";

// Which versions of an object count: the one loop over a listing that the keys, snapshots and "our version" lookups share.

/**
 * The real versions under `prefix` (neither delete markers nor unfinished uploads), in the
 * store's order. Versions, not the plain listing: an attacker's delete markers hide objects
 * from a listing, not from us.
 */
export async function realVersions(destination: Destination, prefix: string): Promise<ObjectVersion[]> {
	const versions: ObjectVersion[] = [];
	for await (const version of destination.listVersions(prefix)) {
		if (!version.isDeleteMarker && !version.incomplete && isRepositoryObjectKey(version.key)) versions.push(version);
	}
	return versions;
}

/** Keys under a prefix that have at least one real version, sorted. */
export async function listKeys(destination: Destination, prefix: string): Promise<string[]> {
	const keys = new Set((await realVersions(destination, prefix)).map((version) => version.key));
	return [...keys].sort();
}

/** When each key under `prefix` was first written: later versions may be an attacker's. */
export async function firstWrites(destination: Destination, prefix: string): Promise<Map<string, Date>> {
	const written = new Map<string, Date>();
	for (const version of await realVersions(destination, prefix)) {
		const known = written.get(version.key);
		if (!known || version.lastModified < known) written.set(version.key, version.lastModified);
	}
	return written;
}

/**
 * The version of `key` that is ours: the one recorded at write time, else the first that
 * verifies (content hash). Locks go on that version only.
 */
export async function ownVersion(destination: Destination, index: MasterIndex, key: string): Promise<string | undefined> {
	const recorded = index.versions.get(key);
	if (recorded) return recorded;
	const candidates = (await realVersions(destination, key)).filter((version) => version.key === key);
	const expected = hashOfKey(key);
	for (const { versionId } of candidates) {
		try {
			const bytes = Buffer.from(await destination.get(key, { versionId }));
			if (expected !== undefined && sha256Hex(bytes) === expected) {
				index.versions.set(key, versionId);
				return versionId;
			}
		} catch {
			// not ours; try the next
		}
	}
	return undefined;
}
