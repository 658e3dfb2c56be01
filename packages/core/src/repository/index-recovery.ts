import type { Destination, ObjectVersion } from "../destination/destination.js";
import { HoldfastError } from "../host/errors.js";
import { concurrencyLimit } from "../host/semaphore.js";
import type { RepositoryKeys } from "./crypto.js";
import { isRepositoryObjectKey, KEY_PREFIX } from "./format.js";
import type { IndexPack } from "./index-file.js";
import { type PackedBlob, readPackHeader } from "./pack.js";

/** What rebuilding index entries from pack headers found. */
export interface PackHeaderRecovery {
	/** Packs in `data/` that no readable index object lists: the ones whose headers were read. */
	readonly scanned: number;
	/** Index entries rebuilt from headers that verified, each with its version's lock from the store. */
	readonly packs: IndexPack[];
	/** Packs whose header verifies under no version: their blobs stay unknown. */
	readonly unreadable: string[];
	/** Blobs in the recovered packs. */
	readonly blobs: number;
}

/** The one warning line a fallback gives (empty when it found nothing to say). */
export function describeRecovery(found: PackHeaderRecovery): string {
	if (found.packs.length === 0 && found.unreadable.length === 0) return "";
	const unreadable = found.unreadable.length > 0 ? `; ${found.unreadable.length} pack(s) have no readable header` : "";
	return `${found.packs.length} pack(s) that no readable index object lists were recovered from their headers (${found.blobs} blobs)${unreadable}; run "holdfast repair index" to record them`;
}

/**
 * Index objects that no version verifies and that no readable index object says it rebuilt:
 * while there is one, packs may exist that only it listed.
 */
export function uncoveredIndexes(unreadable: readonly string[], readable: readonly { rebuilt?: string[] }[]): string[] {
	const rebuilt = new Set(readable.flatMap((file) => file.rebuilt ?? []));
	return unreadable.filter((key) => !rebuilt.has(key));
}

/**
 * Lists `data/` by versions and rebuilds the index entries of every pack `isListed` rejects
 * from the pack's own sealed header: two ranged reads per version tried, never the whole pack.
 */
export async function recoverFromPackHeaders(
	destination: Destination,
	keys: RepositoryKeys,
	isListed: (packKey: string) => boolean,
): Promise<PackHeaderRecovery> {
	const versionsByKey = new Map<string, ObjectVersion[]>();
	for await (const version of destination.listVersions(KEY_PREFIX.data)) {
		if (version.isDeleteMarker || version.incomplete || isListed(version.key) || !isRepositoryObjectKey(version.key)) continue;
		const list = versionsByKey.get(version.key) ?? [];
		list.push(version);
		versionsByKey.set(version.key, list);
	}
	const limit = concurrencyLimit(8);
	const packs: IndexPack[] = [];
	const unreadable: string[] = [];
	await Promise.all(
		[...versionsByKey].map(([key, versions]) =>
			limit(async () => {
				const pack = await recoverPack(destination, keys, key, versions);
				if (pack) packs.push(pack);
				else unreadable.push(key);
			}),
		),
	);
	packs.sort((a, b) => a.key.localeCompare(b.key));
	const blobs = packs.reduce((sum, pack) => sum + pack.blobs.length, 0);
	return { scanned: versionsByKey.size, packs, unreadable: unreadable.sort(), blobs };
}

/** The first version whose header verifies, as an index entry; undefined when none does. */
async function recoverPack(
	destination: Destination,
	keys: RepositoryKeys,
	key: string,
	versions: ObjectVersion[],
): Promise<IndexPack | undefined> {
	// The latest first (what a plain read gets), then locked ones (an attacker's cannot outlive ours), newest first.
	const ordered = [...versions].sort(
		(a, b) =>
			Number(b.isLatest) - Number(a.isLatest) ||
			Number(Boolean(b.lock)) - Number(Boolean(a.lock)) ||
			b.lastModified.getTime() - a.lastModified.getTime(),
	);
	for (const version of ordered) {
		try {
			const blobs = await readHeaderOfVersion(destination, keys, key, version);
			const head = await destination.head(key, version.versionId);
			return {
				key,
				...(version.versionId ? { version: version.versionId } : {}),
				size: version.size,
				// No lock on the store means none: such a copy is not reused where a lock is required.
				mode: head?.lock?.mode ?? "compliance",
				until: (head?.lock?.until ?? new Date(0)).toISOString(),
				blobs: blobs.map((b) => [b.type === "tree" ? 1 : 0, b.id, b.offset, b.length, b.rawLength]),
			};
		} catch {
			// garbage or a damaged header under this version: try the next
		}
	}
	return undefined;
}

async function readHeaderOfVersion(
	destination: Destination,
	keys: RepositoryKeys,
	key: string,
	version: ObjectVersion,
): Promise<PackedBlob[]> {
	const { size, versionId } = version;
	if (size < 4) throw new HoldfastError("CORRUPT", `${key}: too short for a pack`);
	const trailer = Buffer.from(await destination.get(key, { versionId, range: { offset: size - 4, length: 4 } }));
	if (trailer.length !== 4) throw new HoldfastError("CORRUPT", `${key}: short read of the pack trailer`);
	const headerLength = trailer.readUInt32LE(0);
	// A sealed header is at least its nonce and tag (28 bytes).
	if (headerLength < 28 || headerLength + 4 > size) throw new HoldfastError("CORRUPT", `${key}: pack header length out of range`);
	const header = Buffer.from(
		await destination.get(key, { versionId, range: { offset: size - 4 - headerLength, length: headerLength } }),
	);
	if (header.length !== headerLength) throw new HoldfastError("CORRUPT", `${key}: short read of the pack header`);
	const blobs = await readPackHeader(keys, Buffer.concat([header, trailer]), key);
	// A header that authenticates still must describe this pack: every blob inside the blob area.
	const blobArea = size - 4 - headerLength;
	if (blobs.some((b) => b.offset + b.length > blobArea)) {
		throw new HoldfastError("CORRUPT", `${key}: pack header points past its blobs`);
	}
	return blobs;
}
