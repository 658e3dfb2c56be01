import type { TreeNode } from "../repository/tree.js";

/**
 * The first name of a (device, inode) the restore met: what a further name must agree on, and
 * where it was written once it was. Not the whole node: its name, ctime and inode would be kept too.
 */
export interface FirstName {
	readonly size: number;
	readonly mode: number;
	readonly mtime: string;
	readonly content: readonly string[] | undefined;
	/** Set once the file is complete under this name. */
	path?: Buffer;
}

/**
 * The first name of every (device, inode) of a snapshot, so that a further name of the same
 * file becomes a hard link. Trees do not say how many names a file has, so every file is
 * remembered: by its inode as a number in a map per device (no key string per file), and
 * without a promise or callback per file, since links are made only after every file is written.
 */
export class HardLinks {
	readonly #devices = new Map<string, Map<number | string, FirstName>>();

	/**
	 * `first`: an earlier name of this file with the same content. `mine`: this node is now the
	 * first name of its (device, inode). Undefined: no inode, or one reused for other content.
	 */
	claim(node: TreeNode): { first: FirstName } | { mine: FirstName } | undefined {
		// Inode 0 is no file's: a source without inodes gives it, and its files are no one's other names.
		if (node.type !== "file" || node.inode === undefined || node.device === undefined || node.inode === "0") return undefined;
		let inodes = this.#devices.get(node.device);
		if (!inodes) this.#devices.set(node.device, (inodes = new Map()));
		const key = inodeKey(node.inode);
		const first = inodes.get(key);
		if (first) return sameFile(first, node) ? { first } : undefined;
		const mine: FirstName = { size: node.size, mode: node.mode, mtime: node.mtime, content: node.content };
		inodes.set(key, mine);
		return { mine };
	}
}

/** Inode numbers within 2^53 as numbers (small ones are stored unboxed); larger ones stay text. */
function inodeKey(inode: string): number | string {
	const value = Number(inode);
	return Number.isSafeInteger(value) && String(value) === inode ? value : inode;
}

/** Two nodes of one (device, inode) are one file only if they also agree on what it held. */
function sameFile(a: FirstName, b: TreeNode): boolean {
	return (
		a.size === b.size &&
		a.mtime === b.mtime &&
		a.mode === b.mode &&
		(a.content ?? []).length === (b.content ?? []).length &&
		(a.content ?? []).every((id, i) => id === b.content?.[i])
	);
}
