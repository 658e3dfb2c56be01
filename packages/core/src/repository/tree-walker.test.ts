import { describe, expect, it } from "vitest";
import { HoldfastError, isHoldfastError } from "../host/errors.js";
import type { Tree, TreeNode } from "./tree.js";
import { walkTree } from "./tree-walker.js";

const node = (name: string, type: TreeNode["type"], subtree?: string): TreeNode => ({
	name,
	type,
	mode: type === "dir" ? 0o40755 : 0o100644,
	uid: 0,
	gid: 0,
	size: type === "file" ? 3 : 0,
	mtime: "0",
	...(subtree ? { subtree } : {}),
});

// top: a/ (x, b/ (y)), c, z/ (w)
const trees: Record<string, Tree> = {
	top: { nodes: [node("a", "dir", "ta"), node("c", "file"), node("z", "dir", "tz")] },
	ta: { nodes: [node("x", "file"), node("b", "dir", "tb")] },
	tb: { nodes: [node("y", "file")] },
	tz: { nodes: [node("w", "file")] },
};
const load = async (id: string): Promise<Tree> => {
	const tree = trees[id];
	if (!tree) throw new Error(`no tree ${id}`);
	read.push(id);
	return tree;
};
let read: string[] = [];

describe("walkTree", () => {
	it("enters parents before children and leaves folders after them, carrying each folder's value down", async () => {
		read = [];
		const events: string[] = [];
		await walkTree(load, "top", 0, {
			enter: ({ path, node }, depth) => {
				events.push(`enter ${path} @${depth}`);
				return node.type === "dir" ? depth + 1 : undefined;
			},
			leave: ({ path }, depth) => {
				events.push(`leave ${path} @${depth}`);
			},
		});
		expect(events).toEqual([
			"enter a @0",
			"enter a/x @1",
			"enter a/b @1",
			"enter a/b/y @2",
			"leave a/b @2",
			"leave a @1",
			"enter c @0",
			"enter z @0",
			"enter z/w @1",
			"leave z @1",
		]);
	});

	it("waits for what an entry returns when it is a promise or any thenable, and for nothing else", async () => {
		read = [];
		const events: string[] = [];
		let pending = 0;
		// A thenable that is not a Promise, as a plugin's own promise library makes: awaited all the same.
		const later = <T>(value: T): PromiseLike<T> => {
			pending++;
			return {
				// biome-ignore lint/suspicious/noThenProperty: the point is an object with a then method
				then: (resolve) =>
					new Promise((done) =>
						setImmediate(() => {
							pending--;
							done(resolve?.(value) as never);
						}),
					),
			};
		};
		await walkTree<string>(load, "top", "top", {
			enter: ({ path, node }, folder) => {
				events.push(`enter ${path} in ${folder} while ${pending} pending`);
				if (node.type !== "dir") return undefined;
				if (path === "z") return later(false);
				if (path === "a") return later(`<${path}>`);
				pending++;
				return new Promise((done) => setImmediate(() => done(`<${path}>`))).then((value) => {
					pending--;
					return value as string;
				});
			},
		});
		expect(events).toEqual([
			"enter a in top while 0 pending",
			"enter a/x in <a> while 0 pending",
			"enter a/b in <a> while 0 pending",
			"enter a/b/y in <a/b> while 0 pending",
			"enter c in top while 0 pending",
			"enter z in top while 0 pending",
		]);
		expect(read).toEqual(["top", "ta", "tb"]);
	});

	it("does not read a folder whose entry returned false, nor leave it", async () => {
		read = [];
		const paths: string[] = [];
		const left: string[] = [];
		await walkTree(load, "top", undefined, {
			enter: ({ path }) => {
				paths.push(path);
				return path === "a" ? false : undefined;
			},
			leave: ({ path }) => {
				left.push(path);
			},
		});
		expect(paths).toEqual(["a", "c", "z", "z/w"]);
		expect(left).toEqual(["z"]);
		expect(read).toEqual(["top", "tz"]);
	});

	it.each(["..", ".", "", "a/b", "b64:AA=="])("refuses a tree that names an entry %j, before anything sees it", async (name) => {
		const forged: Record<string, Tree> = { top: { nodes: [node("ok", "file"), node(name, "file")] } };
		const seen: string[] = [];
		const error = await walkTree(async (id) => forged[id] as Tree, "top", undefined, {
			enter: ({ path }) => {
				seen.push(path);
			},
		}).catch((e: unknown) => e);
		expect(isHoldfastError(error) && error.code).toBe("CORRUPT");
		expect(seen).toEqual(["ok"]);
	});

	it("decodes names stored as base64 bytes into the path", async () => {
		const raw = Buffer.from([0x66, 0xff, 0x6f]);
		const named: Record<string, Tree> = { top: { nodes: [node(`b64:${raw.toString("base64")}`, "file")] } };
		const names: Buffer[] = [];
		await walkTree(async (id) => named[id] as Tree, "top", undefined, {
			enter: ({ name }) => {
				names.push(name);
			},
		});
		expect(names[0]?.equals(raw)).toBe(true);
	});

	it("stops when the signal is aborted", async () => {
		const controller = new AbortController();
		const seen: string[] = [];
		const error = await walkTree(
			load,
			"top",
			undefined,
			{
				enter: ({ path }) => {
					seen.push(path);
					if (path === "a/x") controller.abort();
				},
			},
			controller.signal,
		).catch((e: unknown) => e);
		expect(isHoldfastError(error) && error.code).toBe("ABORTED");
		expect(seen).toEqual(["a", "a/x"]);
	});

	it("tells a visitor that takes them of folders whose tree is damaged, and walks on; without it the walk fails", async () => {
		read = [];
		const damaged = async (id: string): Promise<Tree> => {
			if (id === "ta") throw new HoldfastError("CORRUPT", "index/..: no version of it verifies");
			return load(id);
		};
		const entered: string[] = [];
		const lost: string[] = [];
		await walkTree(damaged, "top", 0, {
			enter: ({ path }) => {
				entered.push(path);
				return undefined;
			},
			lost: ({ path }, _context, error) => {
				lost.push(`${path}: ${error.message}`);
			},
		});
		expect(lost).toEqual(["a: index/..: no version of it verifies"]);
		expect(entered).toEqual(["a", "c", "z", "z/w"]);
		await expect(walkTree(damaged, "top", 0, { enter: () => undefined })).rejects.toThrow(/no version of it verifies/);
	});
});
