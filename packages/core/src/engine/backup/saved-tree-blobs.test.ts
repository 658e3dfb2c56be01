import { describe, expect, it } from "vitest";
import type { TreeNode } from "../../repository/tree.js";
import { SavedTreeBlobs } from "./saved-tree-blobs.js";

function file(name: string, content: string[]): TreeNode {
	return { name, type: "file", mode: 0o644, uid: 0, gid: 0, size: 1, mtime: "0", ctime: "0", content };
}

function dir(name: string, subtree: string): TreeNode {
	return { name, type: "dir", mode: 0o755, uid: 0, gid: 0, size: 0, mtime: "0", ctime: "0", subtree };
}

describe("the blobs below the trees a backup saved", () => {
	it("gives every blob below a tree, its own and its subtrees' IDs among them", () => {
		const saved = new SavedTreeBlobs();
		saved.note("t-leaf", [file("a", ["b1", "b2"]), file("empty", [])]);
		saved.note("t-other", [file("c", ["b3"])]);
		saved.note("t-mid", [dir("leaf", "t-leaf"), file("d", ["b4"])]);
		saved.note("t-top", [dir("mid", "t-mid"), dir("other", "t-other")]);
		expect([...(saved.get("t-top") ?? [])].sort()).toEqual(["b1", "b2", "b3", "b4", "t-leaf", "t-mid", "t-other", "t-top"]);
		expect([...(saved.get("t-mid") ?? [])].sort()).toEqual(["b1", "b2", "b4", "t-leaf", "t-mid"]);
		expect([...(saved.get("t-leaf") ?? [])].sort()).toEqual(["b1", "b2", "t-leaf"]);
		expect(saved.size).toBe(4);
	});

	it("knows nothing of a tree it did not save, nor of one whose subtree it did not save", () => {
		const saved = new SavedTreeBlobs();
		saved.note("t-top", [dir("lost", "t-lost"), file("a", ["b1"])]);
		expect(saved.get("t-elsewhere")).toBeUndefined();
		// A short set would leave the lost subtree's blobs unprotected.
		expect(saved.get("t-top")).toBeUndefined();
	});

	it("answers a tree saved twice from its first nodes, and a set asked for before from memory", () => {
		const saved = new SavedTreeBlobs();
		saved.note("t-same", [file("a", ["b1"])]);
		saved.note("t-same", [file("a", ["b9"])]);
		const first = saved.get("t-same");
		expect([...(first ?? [])].sort()).toEqual(["b1", "t-same"]);
		expect(saved.get("t-same")).toBe(first);
	});
});
