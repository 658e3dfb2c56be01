import { randomBytes } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { openCatalog } from "../../catalog/catalog.js";
import { CatalogCache } from "../../catalog/catalog-cache.js";
import type { Source, SourceEntry } from "../../source/source.js";
import type { FileSaver } from "./file-saver.js";
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
		const first = new FilesAhead(cache, "repo", "set");
		first.start([lookingSource([])], noStates, noFiles, false);
		// 8 MiB and more, in no order; smaller files, and a root that is itself a file, are not kept.
		const sizes = Array.from({ length: 20 }, (_, i) => 8 * MiB + ((i * 7919) % 20) * MiB);
		for (const [i, size] of sizes.entries()) first.note(file(`big/${i}.img`, size));
		first.note(file("small.txt", 8 * MiB - 1));
		first.note(file("", 100 * MiB));
		await first.settle();
		await first.remember();

		const asked: string[] = [];
		const next = new FilesAhead(cache, "repo", "set");
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
		const third = new FilesAhead(cache, "repo", "set");
		third.start([lookingSource([])], noStates, noFiles, false);
		third.note(file("vm/disk.qcow2", 40 * MiB));
		await third.settle();
		await third.remember();
		expect(writes).toHaveBeenCalledTimes(1);
		const last: string[] = [];
		const fourth = new FilesAhead(cache, "repo", "set");
		fourth.start([lookingSource(last)], noStates, noFiles, false);
		await fourth.settle();
		expect(last).toEqual(["vm/disk.qcow2"]);
	});
});
