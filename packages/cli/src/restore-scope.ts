import type { SnapshotRef, Tree } from "@holdfast/core";

export interface RestoreScope {
	/** Files, folders and links the restore would write. */
	entries: number;
	files: number;
	bytes: number;
	/** The snapshot's top-level names, to show when nothing matched. */
	topLevel?: string[];
	/** Folders whose trees cannot be read: what a pattern matches may lie in them. */
	lost?: string[];
}

/**
 * Walks the snapshot's trees (metadata only, no file content) and matches each entry by
 * path, as restore does.
 */
export async function measureRestore(
	listed: { snapshot: SnapshotRef; tree: (id: string) => Promise<Tree> },
	include: ((path: string) => boolean) | undefined,
	api: Pick<typeof import("@holdfast/core"), "walkTree" | "decodeName">,
	onEntry?: (entriesSeen: number) => void,
): Promise<RestoreScope> {
	let seen = 0;
	const scope: RestoreScope = { entries: 0, files: 0, bytes: 0 };
	await api.walkTree(listed.tree, listed.snapshot.snapshot.tree, undefined, {
		tree: (tree, path) => {
			if (path === "") scope.topLevel = tree.nodes.map((n) => api.decodeName(n.name).toString("utf8"));
		},
		enter: ({ path, node }) => {
			onEntry?.(++seen);
			if (include && !include(path)) return;
			scope.entries++;
			if (node.type === "file") {
				scope.files++;
				scope.bytes += node.size;
			}
		},
		// A folder whose tree cannot be read: the restore names it and restores the rest, which the total counts.
		lost: ({ path }) => {
			(scope.lost ??= []).push(path);
		},
	});
	return scope;
}
