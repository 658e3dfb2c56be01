import { classifyFault } from "../destination/faults.js";
import { collectGarbage } from "../host/collector.js";
import { describeError } from "../host/errors.js";
import { concurrencyLimit } from "../host/semaphore.js";
import { sha256Hex } from "../repository/crypto.js";
import { isRepositoryObjectKey, KEY_PREFIX } from "../repository/format.js";
import { listKeys, type Repository } from "../repository/repository.js";
import type { SnapshotListing, SnapshotRef } from "../repository/snapshot.js";
import { walkTree } from "../repository/tree-walker.js";
import { collectSnapshotObjects, metadataFor } from "./snapshot-objects.js";

/** Requests a check keeps in flight at once (index re-reads, lock heads). */
const CHECK_REQUESTS = 8;

export interface CheckOptions {
	/** Share of packs (0–100) to download and verify; 0 checks structure only. */
	readonly readDataPercent: number;
	readonly now: Date;
	/**
	 * When the next run of a snapshot's set will have renewed protection (its plan's horizon):
	 * a lock that outlasts it is a renewal the planner has in hand, not a gap.
	 */
	readonly renewedBy?: (ref: SnapshotRef) => Date | undefined;
	readonly onProgress?: (done: number, total: number) => void;
}

export interface ImmutabilityGap {
	readonly snapshot: string;
	readonly key: string;
	readonly lockedUntil: string | null;
	readonly needed: string;
}

/** A lock that ends inside its snapshot's window but after the next run, which renews it. */
export interface PlannedRenewal extends ImmutabilityGap {
	readonly renewedBy: string;
}

export interface CheckReport {
	ok: boolean;
	errors: string[];
	immutability: {
		snapshots: number;
		covered: number;
		objects: number;
		lockedObjects: number;
		/** Locks that end before their snapshot's window does and before the next run can renew them. */
		gaps: ImmutabilityGap[];
		/** Locks the next run renews in time (re-include, or an extension due). */
		renewals: PlannedRenewal[];
	};
	packsRead: number;
	/**
	 * Objects under data/, index/ and snapshots/ that no listed snapshot needs (a killed run's
	 * packs, superseded index objects, forgotten snapshots): space grooming frees once their
	 * grace and locks end. Information, not an error.
	 */
	reclaimable: { objects: number; bytes: number };
	/** Present when an index object verified under no version or a blob was missing, and packs were listed from their own headers. */
	indexRecovery?: IndexRecoveryReport;
}

export interface IndexRecoveryReport {
	unreadableIndexes: string[];
	packsScanned: number;
	packsRecovered: number;
	blobsRecovered: number;
	unreadablePacks: string[];
}

/**
 * Structure (every snapshot's trees and blobs indexed, every pack present), optionally the
 * data itself, and the immutability audit: for each snapshot still in its window, is every
 * object it needs locked, by the store itself, until its protect-until?
 */
export async function checkRepository(
	repository: Repository,
	listing: SnapshotListing,
	options: CheckOptions,
): Promise<CheckReport> {
	const errors: string[] = [];
	const snapshots = listing.refs;
	// A snapshot or index object no version of which verifies is a loss, not a warning.
	for (const object of listing.unreadable) errors.push(`${object.key}: ${object.reason}`);
	// Its packs may be recovered from their headers, but its lock records and tombstones are lost until repaired.
	for (const object of repository.unreadableIndex) errors.push(`${object.key}: ${object.reason} (run "holdfast repair index")`);
	// The index was likely read from the catalog: ask the store whether its copies still verify.
	// A few requests at a time: on object storage each is a round trip, and a check makes hundreds.
	const requests = concurrencyLimit(CHECK_REQUESTS);
	const indexProblems = await Promise.all(
		[...repository.index.indexKeys].sort().map((key) =>
			requests(async () => {
				try {
					await repository.reader.read(key, async () => undefined);
					return undefined;
				} catch (error) {
					if (classifyFault(error) === "unreachable") throw error;
					return describeError(error);
				}
			}),
		),
	);
	for (const problem of indexProblems) if (problem !== undefined) errors.push(problem);
	const present = new Set<string>();
	for (const key of await listKeys(repository.destination, KEY_PREFIX.data)) present.add(key);
	for (const pack of repository.index.packs.keys()) {
		if (!present.has(pack)) errors.push(`${pack}: listed in the index but missing from ${repository.destination.description}`);
	}
	const metadata = metadataFor(repository);
	const seenTrees = new Map<string, Set<string>>();
	const needs = new Map<string, Awaited<ReturnType<typeof collectSnapshotObjects>>>();
	for (const ref of snapshots) {
		try {
			const objects = await collectSnapshotObjects(repository, ref, metadata, seenTrees);
			needs.set(ref.id, objects);
			for (const id of objects.missing) errors.push(`snapshot ${ref.id.slice(0, 12)}: blob ${id.slice(0, 16)} is in no pack`);
		} catch (error) {
			if (classifyFault(error) === "unreachable") throw error;
			errors.push(`snapshot ${ref.id.slice(0, 12)}: ${describeError(error)}`);
		}
	}

	const reclaimable = await unneededObjects(repository, listing, needs);

	// Whatever the index load or the walk above rebuilt from pack headers is checked like the rest.
	const recovery = await repository.headerRecovery?.catch(() => undefined);
	let packsRead = 0;
	if (options.readDataPercent > 0) {
		const packs = [...repository.index.packs.keys()].sort();
		const chosen = choosePacks(packs, options.readDataPercent, options.now);
		for (const key of chosen) {
			const { hashOk, damaged: damage } = await verifyPack(repository, key);
			// The pack just read is garbage now: collected before the next is read, not beside it.
			collectGarbage();
			packsRead++;
			options.onProgress?.(packsRead, chosen.length);
			if (hashOk) continue;
			if (damage.length === 0) {
				errors.push(`${key}: content does not match its name (the pack header or trailer is damaged)`);
				continue;
			}
			const files = await filesUsing(repository, snapshots, new Set(damage));
			errors.push(
				`${key}: ${damage.length} damaged blob(s)` +
					(files.length > 0
						? `; affects ${files.slice(0, 10).join(", ")}${files.length > 10 ? ` and ${files.length - 10} more` : ""}`
						: ""),
			);
		}
	}

	const gaps: ImmutabilityGap[] = [];
	const renewals: PlannedRenewal[] = [];
	let covered = 0;
	let inWindow = 0;
	let objectsChecked = 0;
	let lockedObjects = 0;
	const heads = new Map<string, Promise<Date | null>>();
	const lockOf = (key: string) => {
		let pending = heads.get(key);
		if (!pending) {
			pending = (async () => {
				const version = await repository.ownVersion(key).catch(() => undefined);
				const head = version ? await repository.destination.head(key, version) : undefined;
				return head?.lock?.until ?? null;
			})();
			heads.set(key, pending);
		}
		return pending;
	};
	const inWindowKeys = new Set<string>();
	for (const ref of snapshots) {
		if (new Date(ref.snapshot.protectUntil).getTime() <= options.now.getTime()) continue;
		for (const key of needs.get(ref.id)?.keys ?? []) inWindowKeys.add(key);
	}
	// Every lock asked for up front, a few at a time; the loop below reads the answers in order.
	await Promise.all([...inWindowKeys].map((key) => requests(() => lockOf(key))));
	for (const ref of snapshots) {
		const protectUntil = new Date(ref.snapshot.protectUntil);
		if (protectUntil.getTime() <= options.now.getTime()) continue;
		inWindow++;
		const objects = needs.get(ref.id);
		if (!objects) continue;
		let snapshotGaps = 0;
		const renewedBy = options.renewedBy?.(ref);
		for (const key of objects.keys) {
			const until = await lockOf(key);
			objectsChecked++;
			if (until && until.getTime() >= protectUntil.getTime()) {
				lockedObjects++;
				continue;
			}
			const gap = { snapshot: ref.id, key, lockedUntil: until?.toISOString() ?? null, needed: protectUntil.toISOString() };
			if (until && renewedBy && until.getTime() >= renewedBy.getTime()) {
				renewals.push({ ...gap, renewedBy: renewedBy.toISOString() });
				continue;
			}
			snapshotGaps++;
			gaps.push(gap);
		}
		if (snapshotGaps === 0 && objects.missing.length === 0) covered++;
	}
	return {
		ok: errors.length === 0 && gaps.length === 0,
		errors,
		immutability: { snapshots: inWindow, covered, objects: objectsChecked, lockedObjects, gaps, renewals },
		packsRead,
		reclaimable,
		...(recovery
			? {
					indexRecovery: {
						unreadableIndexes: [...repository.unreadableIndexes],
						packsScanned: recovery.scanned,
						packsRecovered: recovery.packs.length,
						blobsRecovered: recovery.blobs,
						unreadablePacks: recovery.unreadable,
					},
				}
			: {}),
	};
}

/** What is stored (every version) that no snapshot needs and no damage report is about. */
async function unneededObjects(
	repository: Repository,
	listing: SnapshotListing,
	needs: ReadonlyMap<string, { keys: ReadonlySet<string> }>,
): Promise<{ objects: number; bytes: number }> {
	const needed = new Set<string>();
	for (const objects of needs.values()) for (const key of objects.keys) needed.add(key);
	// The newest groom index object carries the records in force; unreadable objects are errors above, not space.
	if (repository.index.newestCarrier) needed.add(repository.index.newestCarrier.key);
	for (const key of repository.unreadableIndexes) needed.add(key);
	for (const object of listing.unreadable) needed.add(object.key);
	const bytes = new Map<string, number>();
	for (const prefix of [KEY_PREFIX.data, KEY_PREFIX.index, KEY_PREFIX.snapshots]) {
		for await (const version of repository.destination.listVersions(prefix)) {
			if (version.isDeleteMarker || needed.has(version.key) || !isRepositoryObjectKey(version.key)) continue;
			bytes.set(version.key, (bytes.get(version.key) ?? 0) + version.size);
		}
	}
	let total = 0;
	for (const size of bytes.values()) total += size;
	return { objects: bytes.size, bytes: total };
}

/** Downloads a pack, checks its hash, header and every blob; returns the IDs of damaged blobs. */
async function verifyPack(repository: Repository, key: string): Promise<{ hashOk: boolean; damaged: string[] }> {
	const expected = [...repository.index.blobs.inPacks(new Set([key]))].map(([id]) => id);
	// Some version verifies (an attacker's newer versions are passed over, as restore passes them over).
	try {
		await repository.reader.read(key, async () => undefined);
		return { hashOk: true, damaged: [] };
	} catch (error) {
		// A pack the store did not hand over is unchecked, not damaged: the check fails as a whole.
		if (classifyFault(error) === "unreachable") throw error;
		// No version verifies: find which blobs of the latest one are damaged.
	}
	let bytes: Buffer;
	try {
		bytes = Buffer.from(await repository.destination.get(key));
	} catch (error) {
		if (classifyFault(error) === "unreachable") throw error;
		return { hashOk: false, damaged: expected };
	}
	if (sha256Hex(bytes) === key.slice(key.lastIndexOf("/") + 1)) return { hashOk: true, damaged: [] };
	// The latest version is damaged: name the blobs whose bytes no longer verify in it.
	const damaged: string[] = [];
	for (const id of expected) {
		const location = repository.index.blobs.get(id);
		if (!location) continue;
		try {
			await repository.decodeBlob(bytes.subarray(location.offset, location.offset + location.length), id, id);
		} catch {
			// Also a blob this installation cannot read (no zstd): the pack's latest version is damaged
			// already, and what it holds there may be an attacker's, so the check names it and goes on.
			damaged.push(id);
		}
	}
	return { hashOk: false, damaged };
}

async function filesUsing(repository: Repository, snapshots: SnapshotRef[], blobs: Set<string>): Promise<string[]> {
	const found = new Set<string>();
	for (const ref of snapshots) {
		// A tree that cannot be read names no files here; check reports the tree itself.
		await walkTree((id) => repository.loadTree(id), ref.snapshot.tree, undefined, {
			enter: ({ path, node }) => {
				if (node.content?.some((id) => blobs.has(id))) found.add(`/${path}`);
			},
		}).catch(() => undefined);
	}
	return [...found].sort();
}

/**
 * The packs a partial read verifies: the asked share of them rounded up, so any share above
 * zero reads at least one. Ranked by a hash of each name and the day: the choice is the same
 * all day, and repeated partial checks cover different packs over days.
 */
export function choosePacks(packs: readonly string[], percent: number, now: Date): string[] {
	if (percent >= 100) return [...packs];
	const wanted = Math.ceil((packs.length * percent) / 100);
	const day = now.toISOString().slice(0, 10);
	return packs
		.map((key) => ({ key, rank: sha256Hex(key + day) }))
		.sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0))
		.slice(0, wanted)
		.map(({ key }) => key)
		.sort();
}
