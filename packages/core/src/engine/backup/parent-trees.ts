import type { Repository } from "../../repository/repository.js";
import type { Snapshot } from "../../repository/snapshot.js";
import { decodeName, encodeName, type Tree, type TreeNode } from "../../repository/tree.js";
import type { FileState, FolderStates } from "../file-state.js";
import { rootName } from "./tree-saver.js";

/** A loaded tree of the parent, with its folders by name. */
interface ParentFolder {
	readonly tree: Tree;
	readonly folders: Map<string, TreeNode>;
}

/**
 * What a folder's files were in the set's last snapshot from this machine, read from its trees:
 * the walk's file states where the catalog has none for the folder (a catalog deleted, damaged or
 * new on this machine), as restic compares a backup with its parent snapshot. A file found the
 * same there is unchanged, reused without being read again, and counted so: not "new". Anything
 * that cannot be read here only means the folder's files are read again.
 */
export class ParentTrees {
	/** Loaded folders of the parent, by root and path; only the ancestors of the folder asked for last are kept. */
	readonly #folders = new Map<string, Promise<ParentFolder | undefined>>();
	#top: Promise<Tree | undefined> | undefined;

	/** The name each source root of the parent has at its top (a tree's entries are sorted by name, not by root). */
	readonly #rootNames: readonly string[];

	constructor(
		private readonly repository: Repository,
		private readonly parent: Snapshot,
	) {
		const used = new Set<string>();
		this.#rootNames = parent.paths.map((root) => rootName(root, used));
	}

	/** The states of the source roots that are files, by their paths, as the top folder of a walk keeps them. */
	async rootFileStates(): Promise<FolderStates | undefined> {
		const top = await this.#topTree();
		if (!top) return undefined;
		const f: Record<string, FileState> = {};
		this.parent.paths.forEach((root, index) => {
			const node = top.nodes.find((n) => n.name === this.#rootNames[index]);
			const state = node && stateOfNode(node);
			if (state) f[root] = state;
		});
		return Object.keys(f).length > 0 ? { v: 2, f } : undefined;
	}

	/** The states of the folder `relPath` of the source root `root`, as the parent has its files; undefined when it has no such folder. */
	async statesFor(root: string, relPath: Buffer): Promise<FolderStates | undefined> {
		const index = this.parent.paths.indexOf(root);
		if (index < 0) return undefined;
		const path = relPath.toString("latin1");
		this.#keepAncestorsOf(`${index}:${path}`);
		const folder = await this.#folder(index, path);
		if (!folder) return undefined;
		const f: Record<string, FileState> = {};
		for (const node of folder.tree.nodes) {
			const state = stateOfNode(node);
			if (state) f[decodeName(node.name).toString("latin1")] = state;
		}
		// A folder without files had no catalog value either: nothing to compare with, nothing to write.
		return Object.keys(f).length > 0 ? { v: 2, f } : undefined;
	}

	/** The walk is depth first: a folder that is no ancestor of the one asked for now is not asked for again. */
	#keepAncestorsOf(key: string): void {
		const root = key.slice(0, key.indexOf(":") + 1);
		for (const held of this.#folders.keys()) {
			if (held !== key && !key.startsWith(held === root ? held : `${held}/`)) this.#folders.delete(held);
		}
	}

	/** `path` is the folder's relPath as latin1 ("" for the root itself). */
	#folder(index: number, path: string): Promise<ParentFolder | undefined> {
		const key = `${index}:${path}`;
		let folder = this.#folders.get(key);
		if (!folder) {
			folder = this.#load(index, path).catch(() => undefined);
			this.#folders.set(key, folder);
		}
		return folder;
	}

	#topTree(): Promise<Tree | undefined> {
		this.#top ??= this.repository.loadTree(this.parent.tree).catch(() => undefined);
		return this.#top;
	}

	async #load(index: number, path: string): Promise<ParentFolder | undefined> {
		let node: TreeNode | undefined;
		if (path === "") {
			const name = this.#rootNames[index];
			node = (await this.#topTree())?.nodes.find((n) => n.name === name);
		} else {
			const slash = path.lastIndexOf("/");
			const above = await this.#folder(index, slash < 0 ? "" : path.slice(0, slash));
			node = above?.folders.get(encodeName(Buffer.from(path.slice(slash + 1), "latin1")));
		}
		if (node?.type !== "dir" || !node.subtree) return undefined;
		const tree = await this.repository.loadTree(node.subtree);
		return { tree, folders: new Map(tree.nodes.filter((n) => n.type === "dir").map((n) => [n.name, n])) };
	}
}

/** A file node as the catalog would remember it; none for a file stored while it changed (read again, as the catalog would have it). */
function stateOfNode(node: TreeNode): FileState | undefined {
	if (node.type !== "file" || node.changing || !node.content || node.ctime === undefined || node.inode === undefined)
		return undefined;
	return [node.size, node.mtime, node.ctime, node.inode, node.content];
}
