import type { SnapshotRef, Tree } from "@holdfast/core";

export interface RestoreScope {
	/** Files, folders and links the restore would write. */
	entries: number;
	files: number;
	bytes: number;
	/** The snapshot's top-level names, to show when nothing matched. */
	topLevel?: string[];
}

/**
 * Walks the snapshot's trees (metadata only, no file content) and matches each entry by
 * path, as restore does.
 */
export async function measureRestore(
	listed: { snapshot: SnapshotRef; tree: (id: string) => Promise<Tree> },
	include: ((path: string) => boolean) | undefined,
	decodeName: (name: string) => Buffer,
	onEntry?: (entriesSeen: number) => void,
): Promise<RestoreScope> {
	let seen = 0;
	const scope: RestoreScope = { entries: 0, files: 0, bytes: 0 };
	const walk = async (id: string, base: string) => {
		const tree = await listed.tree(id);
		if (base === "") scope.topLevel = tree.nodes.map((n) => decodeName(n.name).toString("utf8"));
		for (const node of tree.nodes) {
			onEntry?.(++seen);
			const path = base ? `${base}/${decodeName(node.name).toString("utf8")}` : decodeName(node.name).toString("utf8");
			if (!include || include(path)) {
				scope.entries++;
				if (node.type === "file") {
					scope.files++;
					scope.bytes += node.size;
				}
			}
			if (node.type === "dir" && node.subtree) await walk(node.subtree, path);
		}
	};
	await walk(listed.snapshot.snapshot.tree, "");
	return scope;
}
