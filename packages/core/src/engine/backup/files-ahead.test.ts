import { randomBytes } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { openCatalog } from "../../catalog/catalog.js";
import { CatalogCache } from "../../catalog/catalog-cache.js";
import type { Source, SourceEntry } from "../../source/source.js";
import type { FileSaver, StoredFile } from "./file-saver.js";
import { FilesAhead } from "./files-ahead.js";
import type { FolderStateStore } from "./folder-state-store.js";

const MiB = 1024 * 1024;

function file(relPath: string, size: number): SourceEntry {
	return {
		root: "/data",
		relPath: Buffer.from(relPath),
		type: "file",
		size,
		mode: 0o644,
		uid: 0,
		gid: 0,
		mtimeNs: 1n,
		ctimeNs: 1n,
		inode: 7n,
		device: 1n,
	};
}

/** A source whose `lookup` says which paths it was asked for, and finds none of them. */
function lookingSource(asked: string[]): Source {
	return {
		roots: ["/data"],
		scan: async function* () {},
		lookup: async (_root, relPath) => {
			asked.push(relPath.toString());
			return undefined;
		},
	};
}

const noStates = { recall: async (keys: readonly string[]) => keys.map(() => undefined) } as unknown as FolderStateStore;
const noFiles = {} as FileSaver;

describe("FilesAhead", () => {
	it("remembers the 16 largest files of 8 MiB or more, largest first, and the next run looks up exactly those", async () => {
		const catalog = await openCatalog("memory://", "/");
		const cache = new CatalogCache(catalog, randomBytes(32));
		const first = new FilesAhead(cache, "repo", "set", 8);
		first.start([lookingSource([])], noStates, noFiles, false);
		// 8 MiB and more, in no order; smaller files, and a root that is itself a file, are not kept.
		const sizes = Array.from({ length: 20 }, (_, i) => 8 * MiB + ((i * 7919) % 20) * MiB);
		for (const [i, size] of sizes.entries()) first.note(file(`big/${i}.img`, size));
		first.note(file("small.txt", 8 * MiB - 1));
		first.note(file("", 100 * MiB));
		// A path listed twice (a root named twice) is remembered once.
		first.note(file("big/0.img", sizes[0] as number));
		await first.settle();
		await first.remember();

		const asked: string[] = [];
		const next = new FilesAhead(cache, "repo", "set", 8);
		next.start([lookingSource(asked)], noStates, noFiles, false);
		await next.settle();
		const expected = sizes
			.map((size, i) => ({ size, path: `big/${i}.img` }))
			.sort((a, b) => b.size - a.size)
			.slice(0, 16)
			.map(({ path }) => path);
		expect(asked).toEqual(expected);

		// The same files noted again: nothing written. Another set of files: written, and looked up next.
		const writes = vi.spyOn(catalog, "set");
		for (const [i, size] of sizes.entries()) next.note(file(`big/${i}.img`, size));
		await next.remember();
		expect(writes).not.toHaveBeenCalled();
		const third = new FilesAhead(cache, "repo", "set", 8);
		third.start([lookingSource([])], noStates, noFiles, false);
		third.note(file("vm/disk.qcow2", 40 * MiB));
		await third.settle();
		await third.remember();
		expect(writes).toHaveBeenCalledTimes(1);
		const last: string[] = [];
		const fourth = new FilesAhead(cache, "repo", "set", 8);
		fourth.start([lookingSource(last)], noStates, noFiles, false);
		await fourth.settle();
		expect(last).toEqual(["vm/disk.qcow2"]);
	});

	it("reads changed files two at a time; the walk takes a read only for the same file, and reads itself one not begun", async () => {
		const catalog = await openCatalog("memory://", "/");
		const cache = new CatalogCache(catalog, randomBytes(32));
		const names = ["a.img", "b.img", "c.img", "d.img"];
		const first = new FilesAhead(cache, "repo", "set", 8);
		first.start([lookingSource([])], noStates, noFiles, false);
		for (const name of names) first.note(file(name, 10 * MiB));
		first.note(file("same.img", 9 * MiB));
		await first.settle();
		await first.remember();

		// Now: each file looked up with mtime 2 where the catalog remembers 1, but same.img, unchanged.
		const now = (relPath: string) => ({
			...file(relPath, relPath === "same.img" ? 9 * MiB : 10 * MiB),
			mtimeNs: relPath === "same.img" ? 1n : 2n,
			read: async function* () {},
		});
		const states = {
			recall: async (keys: readonly string[]) =>
				keys.map(() => ({
					v: 2,
					f: Object.fromEntries(
						[...names, "same.img"].map((n) => [n, [n === "same.img" ? 9 * MiB : 10 * MiB, "1", "1", "7", []]]),
					),
				})),
		} as unknown as FolderStateStore;
		const source: Source = {
			roots: ["/data"],
			scan: async function* () {},
			lookup: async (_root, relPath) => now(relPath.toString()),
		};
		const saving: { path: string; finish: (stored: StoredFile) => void }[] = [];
		const files = {
			save: async (entry: SourceEntry) => {
				let finish!: (stored: StoredFile) => void;
				const done = new Promise<StoredFile>((resolve) => (finish = resolve));
				saving.push({ path: entry.relPath.toString(), finish });
				return { done };
			},
		} as unknown as FileSaver;
		const ahead = new FilesAhead(cache, "repo", "set", 8);
		ahead.start([source], states, files, false);
		// Let the lookups and the first reads begin.
		for (let i = 0; i < 20 && saving.length < 2; i++) await new Promise((resolve) => setImmediate(resolve));
		expect(saving.map((s) => s.path)).toEqual(["a.img", "b.img"]);
		expect(ahead.reading).toBe(true);

		// c.img is listed before it had a place: the walk reads it, and it is never read ahead.
		expect(ahead.take(now("c.img"))).toBeUndefined();
		// a.img as looked up: taken with the walk's entry. b.img changed again since (same inode): taken as it was read.
		const a = now("a.img");
		expect(ahead.take(a)?.entry).toBe(a);
		const b = { ...now("b.img"), mtimeNs: 3n, size: 11 * MiB };
		const takenB = ahead.take(b);
		expect(takenB?.entry.mtimeNs).toBe(2n);
		expect(takenB?.entry.size).toBe(10 * MiB);
		// Taken once only.
		expect(ahead.take(a)).toBeUndefined();

		const stored: StoredFile = { ids: ["x"], size: 10 * MiB, changing: false, tries: 1 };
		(saving[0] as { finish: (s: StoredFile) => void }).finish(stored);
		(saving[1] as { finish: (s: StoredFile) => void }).finish(stored);
		for (let i = 0; i < 20 && saving.length < 3; i++) await new Promise((resolve) => setImmediate(resolve));
		// d.img got the place c.img was not given; d is another file now (inode 8), so the walk reads it itself.
		expect(saving.map((s) => s.path)).toEqual(["a.img", "b.img", "d.img"]);
		expect(ahead.take({ ...now("d.img"), inode: 8n })).toBeUndefined();
		let settled = false;
		const settling = ahead.settle().then(() => (settled = true));
		await new Promise((resolve) => setImmediate(resolve));
		expect(settled).toBe(false);
		(saving[2] as { finish: (s: StoredFile) => void }).finish(stored);
		await settling;
		expect(ahead.reading).toBe(false);
		expect(saving).toHaveLength(3);
	});

	it("stops reads ahead at their next chunk once the run failed", async () => {
		const catalog = await openCatalog("memory://", "/");
		const cache = new CatalogCache(catalog, randomBytes(32));
		const first = new FilesAhead(cache, "repo", "set", 8);
		first.start([lookingSource([])], noStates, noFiles, false);
		first.note(file("disk.img", 10 * MiB));
		await first.settle();
		await first.remember();

		let chunks = 0;
		const endless = {
			...file("disk.img", 10 * MiB),
			mtimeNs: 2n,
			read: async function* () {
				for (;;) {
					chunks++;
					yield new Uint8Array(1024);
				}
			},
		};
		const states = {
			recall: async (keys: readonly string[]) => keys.map(() => ({ v: 2, f: { "disk.img": [10 * MiB, "1", "1", "7", []] } })),
		} as unknown as FolderStateStore;
		const source: Source = { roots: ["/data"], scan: async function* () {}, lookup: async () => endless };
		let failure: unknown;
		const files = {
			save: async (entry: SourceEntry) => {
				const done = (async () => {
					for await (const _ of (entry.read as () => AsyncIterable<Uint8Array>)())
						await new Promise((resolve) => setImmediate(resolve));
					return { ids: [], size: 0, changing: false, tries: 1 };
				})();
				done.catch((error: unknown) => (failure = error));
				return { done };
			},
		} as unknown as FileSaver;
		const ahead = new FilesAhead(cache, "repo", "set", 8);
		ahead.start([source], states, files, false);
		for (let i = 0; i < 50 && chunks < 5; i++) await new Promise((resolve) => setImmediate(resolve));
		expect(chunks).toBeGreaterThanOrEqual(5);
		await ahead.settle(true);
		const read = chunks;
		expect((failure as { code?: string }).code).toBe("ABORTED");
		await new Promise((resolve) => setImmediate(resolve));
		expect(chunks).toBe(read);
	});
});
