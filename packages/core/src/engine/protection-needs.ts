import { KEY_PREFIX } from "../repository/format.js";
import type { Repository } from "../repository/repository.js";
import type { SnapshotRef } from "../repository/snapshot.js";
import type { TreesBelow } from "./backup/saved-tree-blobs.js";
import type { ObjectNeed, PackNeed, ProtectionNeeds } from "./run-types.js";
import { collectSnapshotBlobs, metadataFor } from "./snapshot-objects.js";

/** The snapshot a backup is about to write: the blobs it reuses from earlier runs, and its window. */
export interface PendingSnapshot {
	readonly blobs: Iterable<string>;
	readonly protectUntil: Date;
	/** Every blob below each tree the backup saved, its own ID among them: earlier snapshots sharing a tree skip its walk. */
	readonly trees?: TreesBelow;
}

/**
 * What lay below each tree the last count of a repository walked, while that repository stays
 * open: a session's next backup walks only the trees it has not seen (a tree's ID fixes its
 * content). Only the last count's trees are kept, so it holds no more than one count needs.
 */
const lastCount = new WeakMap<Repository, Map<string, Set<string>>>();

/** What the last count and the pending snapshot's own trees tell of what lies below a tree. */
function knownTrees(
	counted: ReadonlyMap<string, Set<string>> | undefined,
	saved: TreesBelow | undefined,
): TreesBelow | undefined {
	if (!counted || counted.size === 0) return saved;
	if (!saved) return counted;
	return { get: (treeId) => counted.get(treeId) ?? saved.get(treeId) };
}

/** The blobs of the snapshots still in their window, each until the latest window that uses it. */
export interface WindowCount {
	readonly blobUntil: ReadonlyMap<string, number>;
	/** Each snapshot in its window: its object's key, and its protect-until. */
	readonly snapshots: readonly { readonly key: string; readonly until: number }[];
}

/**
 * Walks the trees of every snapshot whose window is still open at `now`, newest window first,
 * for the blobs each uses. Apart from `protectionNeeds` so that a backup can count while its
 * last files are read: it reads only trees stored before the run and the index's blob table.
 */
export async function countWindow(
	repository: Repository,
	snapshots: readonly SnapshotRef[],
	now: Date,
	known?: TreesBelow,
	pace?: () => Promise<void> | undefined,
): Promise<WindowCount> {
	const blobUntil = new Map<string, number>();
	const counted: { key: string; until: number }[] = [];
	const seenTrees = new Map<string, Set<string>>();
	const below = knownTrees(lastCount.get(repository), known);
	let complete = true;
	// Newest first: shared trees are walked once, and the newest date reaches them first.
	const inWindow = snapshots
		.filter((ref) => new Date(ref.snapshot.protectUntil).getTime() > now.getTime())
		.sort((a, b) => b.snapshot.protectUntil.localeCompare(a.snapshot.protectUntil));
	for (const ref of inWindow) {
		const until = new Date(ref.snapshot.protectUntil).getTime();
		counted.push({ key: ref.key, until });
		const found = await collectSnapshotBlobs(repository, ref, seenTrees, below, pace);
		for (const id of found.blobs) if ((blobUntil.get(id) ?? 0) < until) blobUntil.set(id, until);
		if (found.missingTrees.length > 0) complete = false;
	}
	// A tree missing from the index leaves its parents' counts short: the next count walks afresh.
	if (complete) lastCount.set(repository, seenTrees);
	else lastCount.delete(repository);
	return { blobUntil, snapshots: counted };
}

/**
 * What every snapshot whose window is still open at `now` needs, and until when: each blob
 * until the latest protect-until of the snapshots that use it, each pack and index object
 * for its blobs, each snapshot object for its own window, and config and key copies for the
 * latest window of all. Objects shared by snapshots carry the latest of their dates.
 * `counted`, when given, is `countWindow`'s answer for the same snapshots and `now`.
 */
export async function protectionNeeds(
	repository: Repository,
	snapshots: readonly SnapshotRef[],
	now: Date,
	pending?: PendingSnapshot,
	counted?: WindowCount,
): Promise<ProtectionNeeds> {
	const index = repository.index;
	const window = counted ?? (await countWindow(repository, snapshots, now, pending?.trees));
	const blobUntil = new Map(window.blobUntil);
	const objects = new Map<string, ObjectNeed>();
	const need = (key: string, kind: ObjectNeed["kind"], until: number, writtenLockedUntil?: number) => {
		const known = objects.get(key);
		if (known && known.until.getTime() >= until) return;
		const versionId = index.versions.get(key);
		const recorded = index.lockUntil(key)?.getTime();
		const lockUntil = Math.max(recorded ?? 0, writtenLockedUntil ?? 0);
		objects.set(key, {
			key,
			kind,
			until: new Date(until),
			lockUntil: lockUntil > 0 ? new Date(lockUntil) : undefined,
			...(versionId ? { versionId } : {}),
		});
	};
	let latest = 0;
	let open = 0;
	for (const { key, until } of window.snapshots) {
		open++;
		latest = Math.max(latest, until);
		// A snapshot object is written locked at least until its protect-until (the core refuses less),
		// so that much is known even where no index object recorded its lock.
		need(key, "snapshot", until, until);
	}
	if (pending) {
		const until = pending.protectUntil.getTime();
		open++;
		latest = Math.max(latest, until);
		for (const id of pending.blobs) if ((blobUntil.get(id) ?? 0) < until) blobUntil.set(id, until);
	}
	for (const key of metadataFor(repository)) need(key, key.startsWith(KEY_PREFIX.keys) ? "key" : "config", latest);

	const live = new Map<string, { id: string; until: Date; length: number }[]>();
	const packUntil = new Map<string, number>();
	for (const [id, until] of blobUntil) {
		const location = index.blobs.get(id);
		if (!location) continue; // missing blobs are check's to report; nothing here can protect them
		let list = live.get(location.packKey);
		if (!list) live.set(location.packKey, (list = []));
		list.push({ id, until: new Date(until), length: location.length });
		packUntil.set(location.packKey, Math.max(packUntil.get(location.packKey) ?? 0, until));
	}
	const packs = new Map<string, PackNeed>();
	for (const [key, blobs] of live) {
		const pack = index.packs.get(key);
		const until = packUntil.get(key) ?? 0;
		const versionId = index.versions.get(key);
		packs.set(key, {
			key,
			kind: "pack",
			until: new Date(until),
			lockUntil: index.lockUntil(key),
			...(versionId ? { versionId } : {}),
			size: pack?.size ?? 0,
			liveBytes: blobs.reduce((sum, b) => sum + b.length, 0),
			live: blobs,
			indexKey: pack?.indexKey,
		});
		if (pack?.indexKey) need(pack.indexKey, "index", until);
	}
	return { objects, packs, snapshots: open };
}
