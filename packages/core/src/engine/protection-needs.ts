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

/**
 * What every snapshot whose window is still open at `now` needs, and until when: each blob
 * until the latest protect-until of the snapshots that use it, each pack and index object
 * for its blobs, each snapshot object for its own window, and config and key copies for the
 * latest window of all. Objects shared by snapshots carry the latest of their dates.
 */
export async function protectionNeeds(
	repository: Repository,
	snapshots: readonly SnapshotRef[],
	now: Date,
	pending?: PendingSnapshot,
): Promise<ProtectionNeeds> {
	const index = repository.index;
	const blobUntil = new Map<string, number>();
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
	const needBlob = (id: string, until: number) => {
		if ((blobUntil.get(id) ?? 0) < until) blobUntil.set(id, until);
	};
	let latest = 0;
	let open = 0;
	const seenTrees = new Map<string, Set<string>>();
	const known = knownTrees(lastCount.get(repository), pending?.trees);
	let complete = true;
	// Newest first: shared trees are walked once, and the newest date reaches them first.
	const inWindow = snapshots
		.filter((ref) => new Date(ref.snapshot.protectUntil).getTime() > now.getTime())
		.sort((a, b) => b.snapshot.protectUntil.localeCompare(a.snapshot.protectUntil));
	for (const ref of inWindow) {
		const until = new Date(ref.snapshot.protectUntil).getTime();
		open++;
		latest = Math.max(latest, until);
		// A snapshot object is written locked at least until its protect-until (the core refuses less),
		// so that much is known even where no index object recorded its lock.
		need(ref.key, "snapshot", until, until);
		// Blobs only: the packs of all of them are looked up once, below.
		const found = await collectSnapshotBlobs(repository, ref, seenTrees, known);
		for (const id of found.blobs) needBlob(id, until);
		if (found.missingTrees.length > 0) complete = false;
	}
	// A tree missing from the index leaves its parents' counts short: the next count walks afresh.
	if (complete) lastCount.set(repository, seenTrees);
	else lastCount.delete(repository);
	if (pending) {
		const until = pending.protectUntil.getTime();
		open++;
		latest = Math.max(latest, until);
		for (const id of pending.blobs) needBlob(id, until);
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
