import type { EntryType } from "../source/source.js";

/**
 * A directory as a blob of type tree: its entries sorted by name bytes. Identical
 * directories produce identical bytes, hence the same blob ID: unchanged directories
 * are stored once.
 */
export interface TreeNode {
	/** Name as UTF-8 text, or `b64:` + base64 of the raw bytes when they are not valid UTF-8. */
	name: string;
	type: EntryType;
	mode: number;
	uid: number;
	gid: number;
	size: number;
	/** Nanoseconds since the epoch, as a decimal string (beyond 2^53). */
	mtime: string;
	ctime?: string;
	inode?: string;
	device?: string;
	/** Symlink target, encoded like `name`. */
	target?: string;
	/** Files: content blob IDs in order. */
	content?: string[];
	/** Directories: the tree blob ID. */
	subtree?: string;
	/** Set when the file kept changing while read and was stored as last seen. */
	changing?: boolean;
}

export interface Tree {
	nodes: TreeNode[];
}

/** A name is its bytes: a leading byte order mark is part of it, not dropped as in a document. */
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function encodeName(bytes: Buffer): string {
	try {
		const text = decoder.decode(bytes);
		if (!text.startsWith("b64:")) return text;
	} catch {
		// not UTF-8: fall through to base64
	}
	return `b64:${bytes.toString("base64")}`;
}

export function decodeName(name: string): Buffer {
	return name.startsWith("b64:") ? Buffer.from(name.slice(4), "base64") : Buffer.from(name, "utf8");
}

/**
 * The order of two encoded names' bytes, as `Buffer.compare` of their decoded bytes gives it,
 * mostly without decoding them: UTF-8 orders text by code point, and so does UTF-16 wherever
 * the first unit that differs is no surrogate. A tree's sort compared thousands of names per
 * folder, and decoding both for each comparison was garbage by the megabyte.
 */
export function compareNames(a: string, b: string): number {
	if (!a.startsWith("b64:") && !b.startsWith("b64:")) {
		const length = Math.min(a.length, b.length);
		let at = 0;
		while (at < length && a.charCodeAt(at) === b.charCodeAt(at)) at++;
		// One ends where the other goes on: the shorter is first, unless a surrogate ends what they share.
		if (at === length && (length === 0 || !isSurrogate(a.charCodeAt(length - 1)))) {
			return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
		}
		if (at < length) {
			const x = a.charCodeAt(at);
			const y = b.charCodeAt(at);
			if (!isSurrogate(x) && !isSurrogate(y)) return x < y ? -1 : 1;
		}
	}
	return Buffer.compare(decodeName(a), decodeName(b));
}

function isSurrogate(unit: number): boolean {
	return unit >= 0xd800 && unit <= 0xdfff;
}

export function serializeTree(tree: Tree): Buffer {
	tree.nodes.sort((a, b) => compareNames(a.name, b.name));
	return Buffer.from(JSON.stringify(tree));
}

export function parseTree(bytes: Buffer): Tree {
	return JSON.parse(bytes.toString("utf8")) as Tree;
}
