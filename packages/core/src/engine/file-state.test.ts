import { describe, expect, it } from "vitest";
import { type FolderStates, fileState, folderStateKey, rootStateKey, sameFile, stateOf } from "./file-state.js";

const ID = "ab".repeat(32);
const scanned = { mtime: "1700000000123456789", ctime: "1700000000123456790", inode: "12345678901234567890" };

describe("file states kept a folder to a value", () => {
	it("gives back a state as it was remembered, and compares it with the file as listed now", () => {
		const folder: FolderStates = { v: 2, f: JSON.parse(JSON.stringify({ "a.txt": fileState(10, scanned, [ID]) })) };
		const state = stateOf(folder, "a.txt");
		expect(state).toEqual([10, scanned.mtime, scanned.ctime, scanned.inode, [ID]]);
		expect(sameFile(state, 10, scanned)).toBe(true);
		expect(sameFile(state, 11, scanned)).toBe(false);
		expect(sameFile(state, 10, { ...scanned, mtime: "1700000000123456788" })).toBe(false);
		expect(sameFile(state, 10, { ...scanned, inode: "1" })).toBe(false);
		expect(sameFile(undefined, 10, scanned)).toBe(false);
		// A file dated before 1970 has negative times: remembered all the same, not read as new each run.
		const before1970 = { mtime: "-32340948", ctime: "-1", inode: "7" };
		const old = stateOf({ v: 2, f: { "old.txt": fileState(3, before1970, [ID]) } }, "old.txt");
		expect(old).toEqual([3, "-32340948", "-1", "7", [ID]]);
		expect(sameFile(old, 3, before1970)).toBe(true);
	});

	it("a state damaged in any way, or a name the folder does not hold, is no state: the file is read again", () => {
		const good = fileState(10, scanned, [ID]);
		const damaged: unknown[] = [
			[-1, ...good.slice(1)],
			[1.5, ...good.slice(1)],
			[10, "12a", scanned.ctime, scanned.inode, [ID]],
			[10, "-", scanned.ctime, scanned.inode, [ID]],
			[10, "--1", scanned.ctime, scanned.inode, [ID]],
			[10, scanned.mtime, scanned.ctime, "-3", [ID]],
			[10, scanned.mtime, 7, scanned.inode, [ID]],
			[10, scanned.mtime, scanned.ctime, scanned.inode, [ID.slice(1)]],
			[10, scanned.mtime, scanned.ctime, scanned.inode, ID],
			[10, scanned.mtime, scanned.ctime, scanned.inode],
			{ s: 10, m: scanned.mtime, c: scanned.ctime, i: scanned.inode, b: [ID] },
			null,
		];
		for (const state of damaged) expect(stateOf({ v: 2, f: { x: state } }, "x")).toBeUndefined();
		// Names are keys of a parsed object: what an object inherits is never taken for a file.
		const folder = JSON.parse('{"v":2,"f":{"__proto__":[10,"1","2","3",[]]}}') as FolderStates;
		expect(stateOf(folder, "__proto__")).toEqual([10, "1", "2", "3", []]);
		expect(stateOf(folder, "constructor")).toBeUndefined();
		expect(stateOf(folder, "toString")).toBeUndefined();
		expect(stateOf(undefined, "x")).toBeUndefined();
	});

	it("keys folders apart from the layout of a key per file, and from each other", () => {
		const root = folderStateKey("repo", "set", "/data", Buffer.alloc(0));
		const sub = folderStateKey("repo", "set", "/data", Buffer.from("sub"));
		expect(root.startsWith("folder:")).toBe(true);
		expect(
			new Set([root, sub, rootStateKey("repo", "set"), folderStateKey("repo", "other", "/data", Buffer.alloc(0))]).size,
		).toBe(4);
	});
});
