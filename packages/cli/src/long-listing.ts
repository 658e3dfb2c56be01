import type { TreeNode } from "@holdfast/core";

/** `ls`'s letter for each entry type, in the short listing and the long one alike. */
export const TYPE_LETTER: Record<string, string> = {
	dir: "d",
	symlink: "l",
	fifo: "p",
	socket: "s",
	chardev: "c",
	blockdev: "b",
	file: "-",
};

/** One `ls -l` line: type and permission bits, size, modification time (UTC), path, link target. */
export function longListing(path: string, node: TreeNode, decodeName: (name: string) => Buffer): string {
	const mtime = new Date(Number(BigInt(node.mtime) / 1_000_000n)).toISOString().replace("T", " ").slice(0, 19);
	const target = node.type === "symlink" && node.target !== undefined ? ` -> ${decodeName(node.target).toString("utf8")}` : "";
	return `${TYPE_LETTER[node.type] ?? "?"}${permissions(node.mode)} ${String(node.size).padStart(12)} ${mtime} ${path}${target}`;
}

export function permissions(mode: number): string {
	const bits = "rwxrwxrwx";
	let text = "";
	for (let i = 0; i < 9; i++) text += mode & (1 << (8 - i)) ? bits[i] : "-";
	// setuid, setgid and sticky show in the execute columns, as ls shows them.
	const withSpecial = text.split("");
	if (mode & 0o4000) withSpecial[2] = withSpecial[2] === "x" ? "s" : "S";
	if (mode & 0o2000) withSpecial[5] = withSpecial[5] === "x" ? "s" : "S";
	if (mode & 0o1000) withSpecial[8] = withSpecial[8] === "x" ? "t" : "T";
	return withSpecial.join("");
}
