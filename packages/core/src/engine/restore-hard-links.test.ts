import { describe, expect, it } from "vitest";
import type { TreeNode } from "../repository/tree.js";
import { HardLinks } from "./restore-hard-links.js";

const file = (name: string, inode: string, content = ["a1"], device = "2049"): TreeNode => ({
	name,
	type: "file",
	mode: 0o644,
	uid: 0,
	gid: 0,
	size: 10,
	mtime: "1700000000000000000",
	inode,
	device,
	content,
});

describe("HardLinks", () => {
	it("makes a further name of one (device, inode) with the same content a link to the first", () => {
		const links = new HardLinks();
		const first = links.claim(file("a", "12"));
		expect(first && "mine" in first).toBe(true);
		const again = links.claim(file("b", "12"));
		expect(again && "first" in again ? again.first : undefined).toBe(first && "mine" in first ? first.mine : "none");
	});

	it("tells apart the same inode on other devices and inodes beyond 2^53", () => {
		const links = new HardLinks();
		links.claim(file("a", "12"));
		expect(links.claim(file("b", "12", ["a1"], "2050"))).toHaveProperty("mine");
		links.claim(file("c", "18446744073709551615"));
		expect(links.claim(file("d", "18446744073709551614"))).toHaveProperty("mine");
		expect(links.claim(file("e", "18446744073709551615"))).toHaveProperty("first");
	});

	it("does not link an inode reused for other content, nor files without an inode", () => {
		const links = new HardLinks();
		links.claim(file("a", "12"));
		expect(links.claim(file("b", "12", ["b2"]))).toBeUndefined();
		const bare = { ...file("c", "1"), inode: undefined };
		expect(links.claim(bare)).toBeUndefined();
		expect(links.claim(bare)).toBeUndefined();
		// Inode 0: a source without inodes; two equal files of it stay two files.
		expect(links.claim(file("d", "0"))).toBeUndefined();
		expect(links.claim(file("e", "0"))).toBeUndefined();
	});

	it("remembers where the first name was written", () => {
		const links = new HardLinks();
		const mine = links.claim(file("a", "7"));
		if (mine && "mine" in mine) mine.mine.path = Buffer.from("/t/a");
		const again = links.claim(file("b", "7"));
		expect(again && "first" in again ? again.first.path?.toString() : undefined).toBe("/t/a");
	});
});
