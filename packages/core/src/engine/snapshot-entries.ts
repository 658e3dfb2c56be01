import type { SnapshotRef } from "../repository/snapshot.js";
import { decodeName, type Tree } from "../repository/tree.js";
import { type TreeEntry, walkTree } from "../repository/tree-walker.js";

/** A snapshot picked for listing, with the reader of its trees. */
export interface ListedSnapshot {
	readonly snapshot: SnapshotRef;
	readonly tree: (id: string) => Promise<Tree>;
}

/** What a listing holds: the entries, the top-level names, and the folders whose trees could not be read. */
export interface SnapshotContents {
	readonly entries: TreeEntry[];
	readonly topLevel: string[];
	/** Folders listed (their entry is in `entries`) whose inside cannot be read, and why: the rest is listed. */
	readonly lost: { readonly path: string; readonly reason: string }[];
}

/**
 * What a listed snapshot holds at and under `path` (a path in the snapshot; all of it when
 * empty), parents before children; folders off the path are not read. `topLevel` names what
 * the snapshot holds at its top, for a message when nothing is there. A folder whose tree is
 * damaged or gone is named in `lost` and the listing goes on, as a restore does.
 */
export async function snapshotEntries(listed: ListedSnapshot, path = ""): Promise<SnapshotContents> {
	const entries: TreeEntry[] = [];
	const lost: { path: string; reason: string }[] = [];
	let topLevel: string[] = [];
	const within = (p: string) => !path || p === path || p.startsWith(`${path}/`);
	await walkTree(listed.tree, listed.snapshot.snapshot.tree, undefined, {
		tree: (t, at) => {
			if (at === "") topLevel = t.nodes.map((n) => decodeName(n.name).toString("utf8"));
		},
		enter: (entry) => {
			if (within(entry.path)) entries.push(entry);
			return within(entry.path) || path.startsWith(`${entry.path}/`) ? undefined : false;
		},
		lost: (entry, _context, error) => {
			lost.push({ path: entry.path, reason: error.message.split("\n")[0] as string });
		},
	});
	return { entries, topLevel, lost };
}
