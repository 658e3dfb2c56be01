import { decodeName, HoldfastError, type Tree, type TreeNode, walkTree } from "@holdfast/core";
import { describe, expect, it } from "vitest";
import { measureRestore } from "./restore-scope.js";

const file = (name: string, size: number): TreeNode => ({ name, type: "file", mode: 0o644, uid: 0, gid: 0, size, mtime: "0" });
const dir = (name: string, subtree: string): TreeNode => ({
	name,
	type: "dir",
	mode: 0o755,
	uid: 0,
	gid: 0,
	size: 0,
	mtime: "0",
	subtree,
});

const trees: Record<string, Tree> = {
	root: { nodes: [file("a.txt", 3), dir("damaged", "gone"), dir("docs", "docs")] },
	docs: { nodes: [file("b.txt", 5), file("c.txt", 7)] },
};
const listed = {
	snapshot: { snapshot: { tree: "root" } } as Parameters<typeof measureRestore>[0]["snapshot"],
	tree: async (id: string): Promise<Tree> => {
		const tree = trees[id];
		if (!tree) throw new HoldfastError("CORRUPT", `tree ${id}: authentication failed`);
		return tree;
	},
};

describe("the restore's scope", () => {
	it("counts what can be restored past a folder whose tree cannot be read, as the restore restores it", async () => {
		const scope = await measureRestore(listed, undefined, { walkTree, decodeName });
		expect(scope).toMatchObject({ files: 3, bytes: 15, entries: 5, topLevel: ["a.txt", "damaged", "docs"], lost: ["damaged"] });
	});

	it("with --include, counts only what matches", async () => {
		const scope = await measureRestore(listed, (path) => path.startsWith("docs"), { walkTree, decodeName });
		expect(scope).toMatchObject({ files: 2, bytes: 12, entries: 3 });
	});
});
