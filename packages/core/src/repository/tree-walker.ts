import { HoldfastError, isDataLoss } from "../host/errors.js";
import { decodeName, type Tree, type TreeNode } from "./tree.js";

/** One node met on a walk through a snapshot's trees. */
export interface TreeEntry {
	/** Its path in the snapshot: the names from the top, as UTF-8 text, joined by "/". */
	readonly path: string;
	/** Its name as the bytes the source gave. */
	readonly name: Buffer;
	readonly node: TreeNode;
	/** The tree that lists it, for messages about a damaged tree. */
	readonly treeId: string;
}

/**
 * What a walk does at each node. `C` is whatever a caller carries down the folders (restore's
 * target folder, nothing for a listing).
 */
export interface TreeVisitor<C> {
	/**
	 * Called for every node, parents before children, in the tree's (sorted) order. For a
	 * folder, the value returned is what its children are walked with; `false` leaves the
	 * folder's inside unread, and `undefined` walks it with the parent's value.
	 */
	enter(entry: TreeEntry, context: C): PromiseLike<C | false | undefined> | C | false | undefined;
	/** Called after a folder's children, with the value they were walked with. */
	leave?(entry: TreeEntry, context: C): Promise<void> | void;
	/** Called with each tree once it is read, before its nodes are entered. */
	tree?(tree: Tree, path: string, context: C): void;
	/**
	 * A folder whose tree is damaged or gone from the store: told here, its inside left out, and
	 * the walk goes on with the rest (restore recovers what it can). Without it the walk fails.
	 */
	lost?(entry: TreeEntry, context: C, error: Error): Promise<void> | void;
}

/**
 * The one walk through a snapshot's trees, shared by restore, `ls`, the restore preview and
 * `check`'s report of damaged files, so that all of them see the same paths and refuse the
 * same damaged names. A name that is empty, `.`, `..` or holds `/` or NUL cannot come from a
 * file system: the tree is damaged or forged, and the walk stops there rather than let a
 * restore write outside its target.
 */
export async function walkTree<C>(
	loadTree: (id: string) => Promise<Tree>,
	rootId: string,
	root: C,
	visitor: TreeVisitor<C>,
	signal?: AbortSignal,
): Promise<void> {
	const walk = async (treeId: string, tree: Tree, base: string, context: C): Promise<void> => {
		visitor.tree?.(tree, base, context);
		for (const node of tree.nodes) {
			if (signal?.aborted) throw new HoldfastError("ABORTED", "aborted");
			const name = safeName(node, treeId);
			const text = name.toString("utf8");
			const entry: TreeEntry = { path: base ? `${base}/${text}` : text, name, node, treeId };
			// Awaited only when it is a promise (or another thenable, as `await` has it): a restore
			// enters most files without waiting on anything, and each await allocates.
			const entered = visitor.enter(entry, context);
			const inner = isThenable(entered) ? await entered : entered;
			if (node.type !== "dir") continue;
			if (inner === false) continue;
			const childContext = inner === undefined ? context : inner;
			if (node.subtree) {
				let subtree: Tree;
				try {
					subtree = await loadTree(node.subtree);
				} catch (error) {
					if (!visitor.lost || !isDataLoss(error)) throw error;
					await visitor.lost(entry, childContext, error as Error);
					continue;
				}
				await walk(node.subtree, subtree, entry.path, childContext);
			}
			await visitor.leave?.(entry, childContext);
		}
	};
	await walk(rootId, await loadTree(rootId), "", root);
}

/** What `await` would wait for: any object or function with a `then` method, as the language has it. */
function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
	return (
		(typeof value === "object" || typeof value === "function") &&
		value !== null &&
		typeof (value as { then?: unknown }).then === "function"
	);
}

function safeName(node: TreeNode, treeId: string): Buffer {
	const name = decodeName(node.name);
	if (name.length === 0 || name.includes(0x2f) || name.includes(0x00) || name.equals(DOT) || name.equals(DOT_DOT)) {
		throw new HoldfastError("CORRUPT", `tree ${treeId.slice(0, 16)}: unsafe name ${JSON.stringify(node.name)}`);
	}
	return name;
}

const DOT = Buffer.from(".");
const DOT_DOT = Buffer.from("..");
