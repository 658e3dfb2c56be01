import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BlobReader, Repository } from "@holdfast/core/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createHarness, type Harness } from "./support/harness.js";

let harness: Harness | undefined;
afterEach(async () => {
	vi.restoreAllMocks();
	await harness?.close();
	harness = undefined;
});

/** Catalog keys of cached trees: the namespace, then `tree:<repository>:<tree ID>`. */
async function cachedTrees(h: Harness): Promise<string[]> {
	const keys: string[] = [];
	for await (const [key] of h.catalog.iterator?.(undefined) ?? []) if (String(key).includes("tree:")) keys.push(String(key));
	return keys;
}

describe("trees a backup stores are cached for the next run", () => {
	it("the next backup walks the last snapshot's trees from the catalog, reading no blob from the destination", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		for (const dir of ["a/b", "a/c", "d"]) {
			await mkdir(join(src, dir), { recursive: true });
			await writeFile(join(src, dir, "file.txt"), `in ${dir}\n`);
		}
		await harness.engine.init();
		await harness.engine.backup();
		// src, a, a/b, a/c, d and the snapshot's top: six trees, each cached once.
		expect(await cachedTrees(harness)).toHaveLength(6);

		harness.clock.advance(3_600_000);
		// Object reads live in the blob reader: every blob read from the destination passes there.
		const loadBlob = vi.spyOn(BlobReader.prototype, "loadBlob");
		const loadTree = vi.spyOn(Repository.prototype, "loadTree");
		// A new file in a/b: the top, src, a and a/b differ from the first snapshot's.
		await writeFile(join(src, "a/b/new.txt"), "new\n");
		const again = await harness.engine.backup();
		expect(again.summary.files.unchanged).toBe(3);
		expect(again.summary.files.new).toBe(1);
		// The count that keeps the first snapshot protected visits the trees this run does not share, from the cache.
		expect(loadTree.mock.calls.length).toBeGreaterThanOrEqual(4);
		expect(loadBlob).not.toHaveBeenCalled();
	});
});
