import type { TreeNode } from "../../repository/tree.js";

/** What lies below a tree: every blob, the tree's own ID among them; undefined when not known. */
export interface TreesBelow {
	get(treeId: string): Set<string> | undefined;
}

interface SavedTree {
	/** The content lists of its files, as the nodes have them. */
	readonly contents: (readonly string[])[];
	readonly subtrees: string[];
}

/**
 * The trees a backup saved, with the blobs each lists and its subtrees: what the count of
 * earlier snapshots' locks would otherwise load again for every tree they share with this one.
 * A tree's set of blobs below is made only when asked for, in one pass over what lies below it.
 */
export class SavedTreeBlobs implements TreesBelow {
	readonly #trees = new Map<string, SavedTree>();
	readonly #asked = new Map<string, Set<string>>();

	/** A tree saved under `id` with these nodes (its subtrees saved before it). */
	note(id: string, nodes: readonly TreeNode[]): void {
		if (this.#trees.has(id)) return;
		const contents: (readonly string[])[] = [];
		const subtrees: string[] = [];
		for (const node of nodes) {
			if (node.content && node.content.length > 0) contents.push(node.content);
			if (node.subtree !== undefined) subtrees.push(node.subtree);
		}
		this.#trees.set(id, { contents, subtrees });
	}

	get size(): number {
		return this.#trees.size;
	}

	get(treeId: string): Set<string> | undefined {
		const known = this.#asked.get(treeId);
		if (known) return known;
		const below = new Set<string>();
		// A set short of a subtree's blobs would leave them unprotected: the count then walks the tree itself.
		if (!this.#addBelow(treeId, below)) return undefined;
		this.#asked.set(treeId, below);
		return below;
	}

	#addBelow(treeId: string, into: Set<string>): boolean {
		const tree = this.#trees.get(treeId);
		if (!tree) return false;
		into.add(treeId);
		for (const content of tree.contents) for (const id of content) into.add(id);
		for (const subtree of tree.subtrees) {
			const known = this.#asked.get(subtree);
			if (known) for (const id of known) into.add(id);
			else if (!this.#addBelow(subtree, into)) return false;
		}
		return true;
	}
}
