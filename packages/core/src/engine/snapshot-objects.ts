import { HoldfastError } from "../host/errors.js";
import { KEY_PREFIX } from "../repository/format.js";
import type { MasterIndex } from "../repository/index-file.js";
import { METADATA_COPIES, type Repository } from "../repository/repository.js";
import type { SnapshotListing, SnapshotRef } from "../repository/snapshot.js";
import type { TreesBelow } from "./backup/saved-tree-blobs.js";

export interface SnapshotObjects {
	/** Every object the snapshot needs to restore: config, keys, the snapshot, index objects, packs. */
	readonly keys: Set<string>;
	readonly packs: Set<string>;
	readonly blobs: Set<string>;
	/** Blobs the index does not know (a damaged repository). */
	readonly missing: string[];
	/** Of those, the trees: what lies below them is unknown. */
	readonly missingTrees: string[];
}

/**
 * The pack of each blob found so far by the walks that share one `seenTrees`, in the index they
 * read: snapshots share most of their blobs, and a look-up in the blob table costs more than in a Map.
 */
const packsFound = new WeakMap<Map<string, Set<string>>, { index: MasterIndex; packOf: Map<string, string> }>();

function packLookups(repository: Repository, seenTrees: Map<string, Set<string>>): Map<string, string> {
	const found = packsFound.get(seenTrees);
	if (found && found.index === repository.index) return found.packOf;
	const packOf = new Map<string, string>();
	packsFound.set(seenTrees, { index: repository.index, packOf });
	return packOf;
}

/** Every blob a snapshot's trees name, its trees among them, and those the index does not know. */
export interface SnapshotBlobs {
	readonly blobs: Set<string>;
	/** Trees the index does not know: what lies below them is unknown. */
	readonly missingTrees: string[];
}

/**
 * Walks a snapshot's trees for the blobs it uses, and no further: no pack is looked up. Trees
 * are shared between snapshots, so `seenTrees` lets callers walking many snapshots visit each
 * tree once; `known` holds what an earlier walk found below trees it walked in full (a tree's
 * ID fixes what lies below it). `pace`, before each tree is loaded, may hold the walk back.
 */
export async function collectSnapshotBlobs(
	repository: Repository,
	ref: SnapshotRef,
	seenTrees = new Map<string, Set<string>>(),
	known?: TreesBelow,
	pace?: () => Promise<void> | undefined,
): Promise<SnapshotBlobs> {
	const blobs = new Set<string>();
	const missingTrees: string[] = [];
	const visit = async (treeId: string): Promise<void> => {
		blobs.add(treeId);
		const earlier = seenTrees.has(treeId) ? undefined : known?.get(treeId);
		if (earlier) seenTrees.set(treeId, earlier);
		const cached = seenTrees.get(treeId);
		if (cached) {
			for (const id of cached) blobs.add(id);
			return;
		}
		const local = new Set<string>([treeId]);
		if (!(await repository.locateBlob(treeId))) {
			missingTrees.push(treeId);
			seenTrees.set(treeId, local);
			return;
		}
		await pace?.();
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
	return { blobs, missingTrees };
}

/** Walks a snapshot's trees and collects what it needs to restore, as `collectSnapshotBlobs` walks. */
export async function collectSnapshotObjects(
	repository: Repository,
	ref: SnapshotRef,
	metadata: readonly string[],
	seenTrees = new Map<string, Set<string>>(),
	known?: TreesBelow,
): Promise<SnapshotObjects> {
	const { blobs, missingTrees } = await collectSnapshotBlobs(repository, ref, seenTrees, known);
	const missing = [...missingTrees];
	const packs = new Set<string>();
	const packOf = packLookups(repository, seenTrees);
	for (const id of blobs) {
		const known = packOf.get(id);
		if (known) {
			packs.add(known);
			continue;
		}
		const location = repository.index.blobs.get(id) ?? (await repository.locateBlob(id));
		if (location) {
			packs.add(location.packKey);
			packOf.set(id, location.packKey);
		} else if (!missing.includes(id)) missing.push(id);
	}
	const keys = new Set<string>([...metadata, ref.key, ...packs]);
	for (const pack of packs) {
		const indexKey = repository.index.packs.get(pack)?.indexKey;
		if (indexKey) keys.add(indexKey);
	}
	return { keys, packs, blobs, missing, missingTrees };
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

/** Host and store clocks may disagree by this much when "written after" is judged. */
const CLOCK_SKEW_MS = 15 * 60_000;

/**
 * `latest`, a full ID, an unambiguous prefix, or the newest at or before a time; `latest` and
 * `at` look at the given set's (and host's) snapshots only. A snapshot object that cannot be read and may
 * be the one asked for is an error naming it and the newest readable one, never a silent
 * step back to an older snapshot.
 */
export function pickSnapshot(
	listing: SnapshotListing,
	selector: string,
	options: { at?: Date; setName?: string; host?: string | undefined } = {},
): SnapshotRef {
	const { refs, unreadable } = listing;
	const pool = refs.filter(
		(r) =>
			(!options.setName || r.snapshot.set === options.setName) &&
			(options.host === undefined || r.snapshot.host === options.host),
	);
	// --at picks the snapshot itself: with an ID too, one of the two would be ignored.
	if (options.at && selector !== "latest") {
		throw new HoldfastError(
			"USAGE",
			`snapshot "${selector}" and --at name two snapshots: give latest with --at, or the ID alone`,
		);
	}
	if (options.at || selector === "latest") {
		const at = options.at;
		const picked = at ? pool.filter((r) => new Date(r.snapshot.time).getTime() <= at.getTime()).at(-1) : pool.at(-1);
		// How long a backup may run between its snapshot's time and the write of its object, as seen so far.
		const longestRun = Math.max(
			0,
			...refs.map((r) => (r.written ? r.written.getTime() - new Date(r.snapshot.time).getTime() : 0)),
		);
		const after = picked ? new Date(picked.snapshot.time).getTime() : Number.NEGATIVE_INFINITY;
		const until = at ? at.getTime() : Number.POSITIVE_INFINITY;
		// Its time is unknown, but lies between (written − longest run) and written.
		const maybe = unreadable.filter((u) => {
			const written = u.written?.getTime() ?? Number.POSITIVE_INFINITY;
			return written + CLOCK_SKEW_MS > after && written - longestRun - CLOCK_SKEW_MS <= until;
		});
		const first = maybe[0];
		if (first) {
			const asked = at ? `the newest snapshot at or before ${at.toISOString()}` : "the latest snapshot";
			throw new HoldfastError(
				"CORRUPT",
				`${first.key} cannot be read (${first.reason}) and may be ${asked}` +
					(maybe.length > 1 ? ` (${maybe.length - 1} more unreadable)` : "") +
					(picked
						? `; the newest readable one is ${picked.id.slice(0, 12)} (${picked.snapshot.time}): restore it by ID if it will do`
						: "; no readable snapshot qualifies"),
			);
		}
		if (!picked) {
			const scope =
				(options.setName ? ` of set ${options.setName}` : "") + (options.host !== undefined ? ` from host ${options.host}` : "");
			throw new HoldfastError(
				"NOT_FOUND",
				at ? `no snapshot${scope} at or before ${at.toISOString()}` : `there are no snapshots${scope} yet`,
			);
		}
		return picked;
	}
	const matches = refs.filter((r) => r.id.startsWith(selector.toLowerCase()));
	if (matches.length === 1) return matches[0] as SnapshotRef;
	if (matches.length > 1) throw new HoldfastError("USAGE", `snapshot "${selector}" is ambiguous (${matches.length} match)`);
	const damaged = unreadable.find((u) => u.id.startsWith(selector.toLowerCase()));
	if (damaged) throw new HoldfastError("CORRUPT", `${damaged.key} cannot be read (${damaged.reason})`);
	throw new HoldfastError("NOT_FOUND", `no snapshot "${selector}"`);
}
