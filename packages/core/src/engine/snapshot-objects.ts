import { HoldfastError } from "../host/errors.js";
import { KEY_PREFIX } from "../repository/format.js";
import { METADATA_COPIES, type Repository } from "../repository/repository.js";
import type { SnapshotRef } from "../repository/snapshot.js";

export interface SnapshotObjects {
	/** Every object the snapshot needs to restore: config, keys, the snapshot, index objects, packs. */
	readonly keys: Set<string>;
	readonly packs: Set<string>;
	readonly blobs: Set<string>;
	/** Blobs the index does not know (a damaged repository). */
	readonly missing: string[];
}

/**
 * Walks a snapshot's trees and collects what it needs. Trees are shared between snapshots,
 * so `seenTrees` lets callers walking many snapshots visit each tree once.
 */
export async function collectSnapshotObjects(
	repository: Repository,
	ref: SnapshotRef,
	metadata: readonly string[],
	seenTrees = new Map<string, Set<string>>(),
): Promise<SnapshotObjects> {
	const blobs = new Set<string>();
	const missing: string[] = [];
	const visit = async (treeId: string): Promise<void> => {
		blobs.add(treeId);
		const cached = seenTrees.get(treeId);
		if (cached) {
			for (const id of cached) blobs.add(id);
			return;
		}
		const local = new Set<string>([treeId]);
		if (!(await repository.locateBlob(treeId))) {
			missing.push(treeId);
			seenTrees.set(treeId, local);
			return;
		}
		const tree = await repository.loadTree(treeId);
		for (const node of tree.nodes) {
			for (const id of node.content ?? []) local.add(id);
			if (node.subtree) {
				await visit(node.subtree);
				for (const id of seenTrees.get(node.subtree) ?? []) local.add(id);
			}
		}
		seenTrees.set(treeId, local);
		for (const id of local) blobs.add(id);
	};
	await visit(ref.snapshot.tree);
	const packs = new Set<string>();
	for (const id of blobs) {
		const location = repository.index.blobs.get(id) ?? (await repository.locateBlob(id));
		if (location) packs.add(location.packKey);
		else if (!missing.includes(id)) missing.push(id);
	}
	const keys = new Set<string>([...metadata, ref.key, ...packs]);
	for (const pack of packs) {
		const indexKey = repository.index.packs.get(pack)?.indexKey;
		if (indexKey) keys.add(indexKey);
	}
	return { keys, packs, blobs, missing };
}

/**
 * The config copies and key files kept protected: one of each suffices to restore, and two
 * of each are kept so that one damaged object never costs the repository. The ones locked
 * longest stand for the rest (older copies may lapse once renewed copies exist).
 */
export function metadataFor(repository: Repository): string[] {
	const best = (prefix: string) =>
		repository.metadataKeys
			.filter((k) => k.startsWith(prefix))
			.sort((a, b) => (repository.index.lockUntil(b)?.getTime() ?? 0) - (repository.index.lockUntil(a)?.getTime() ?? 0))
			.slice(0, METADATA_COPIES);
	return [...best(KEY_PREFIX.config), ...best(KEY_PREFIX.keys)];
}

/** `latest`, a full ID, an unambiguous prefix, or the newest at or before a time. */
export function pickSnapshot(refs: readonly SnapshotRef[], selector: string, at?: Date, setName?: string): SnapshotRef {
	const pool = setName ? refs.filter((r) => r.snapshot.set === setName) : refs;
	if (at) {
		const candidates = pool.filter((r) => new Date(r.snapshot.time).getTime() <= at.getTime());
		const newest = candidates.at(-1);
		if (!newest) throw new HoldfastError("NOT_FOUND", `no snapshot at or before ${at.toISOString()}`);
		return newest;
	}
	if (selector === "latest") {
		const newest = pool.at(-1);
		if (!newest) throw new HoldfastError("NOT_FOUND", "there are no snapshots yet");
		return newest;
	}
	const matches = refs.filter((r) => r.id.startsWith(selector.toLowerCase()));
	if (matches.length === 1) return matches[0] as SnapshotRef;
	if (matches.length > 1) throw new HoldfastError("USAGE", `snapshot "${selector}" is ambiguous (${matches.length} match)`);
	throw new HoldfastError("NOT_FOUND", `no snapshot "${selector}"`);
}
