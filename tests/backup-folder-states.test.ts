import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ParentTrees } from "@holdfast/core/testing";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { describeTree } from "./support/trees.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

/** The catalog keys each backup writes, in the order written. */
function recordWrites(h: Harness): string[] {
	const written: string[] = [];
	const catalog = h.catalog;
	const setMany = catalog.setMany.bind(catalog);
	catalog.setMany = async (entries) => {
		written.push(...entries.map((entry) => entry.key));
		return setMany(entries);
	};
	return written;
}

const folderWrites = (keys: string[]) => keys.filter((key) => key.startsWith("folder:") || key.startsWith("roots:"));

describe("file states kept a folder to a catalog value", () => {
	it("a backup with nothing changed writes no state; a file gone rewrites its folder's value alone", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await mkdir(join(src, "a"), { recursive: true });
		await mkdir(join(src, "b"), { recursive: true });
		await writeFile(join(src, "a/x.txt"), "x\n");
		await writeFile(join(src, "a/y.txt"), "y\n");
		await writeFile(join(src, "b/z.txt"), "z\n");
		await harness.engine.init();
		let written = recordWrites(harness);
		expect((await harness.engine.backup()).summary.files).toMatchObject({ new: 3, unchanged: 0 });
		// One value per folder that holds files: a and b (src itself holds none).
		expect(folderWrites(written)).toHaveLength(2);

		harness.clock.advance(3_600_000);
		written = recordWrites(harness);
		expect((await harness.engine.backup()).summary.files).toMatchObject({ new: 0, changed: 0, unchanged: 3 });
		expect(folderWrites(written)).toEqual([]);

		harness.clock.advance(3_600_000);
		await rm(join(src, "a/y.txt"));
		written = recordWrites(harness);
		expect((await harness.engine.backup()).summary.files).toMatchObject({ new: 0, changed: 0, unchanged: 2 });
		const rewritten = folderWrites(written);
		expect(rewritten).toHaveLength(1);
		expect(rewritten[0]?.endsWith(`:${Buffer.from("a").toString("base64")}`)).toBe(true);

		// The rewritten value still holds x.txt: the next run reads nothing.
		harness.clock.advance(3_600_000);
		written = recordWrites(harness);
		const last = await harness.engine.backup();
		expect(last.summary.files).toMatchObject({ new: 0, changed: 0, unchanged: 2 });
		expect(last.summary.bytes.read).toBe(0);
		expect(folderWrites(written)).toEqual([]);
		const target = join(harness.dir, "restored");
		await harness.engine.restore(last.snapshot?.id as string, { target });
		expect(await describeTree(join(target, "src"))).toEqual(await describeTree(src));
	});

	it("without a catalog, compares with the set's last snapshot: unchanged files are not read, and each is counted as what it is", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await mkdir(join(src, "a/deep"), { recursive: true });
		await mkdir(join(src, "b"), { recursive: true });
		for (const [path, text] of [
			["a/x.txt", "x"],
			["a/deep/y.txt", "y"],
			["b/z.txt", "z"],
			["top.txt", "top"],
		])
			await writeFile(join(src, path), `${text}\n`.repeat(1000));
		await harness.engine.init();
		await harness.engine.backup();

		// The machine lost its catalog; meanwhile one file changed and one was added.
		await harness.reopen({ freshCatalog: true });
		harness.clock.advance(3_600_000);
		await writeFile(join(src, "b/z.txt"), "changed\n".repeat(1000));
		await writeFile(join(src, "a/deep/new.txt"), "new\n");
		const written = recordWrites(harness);
		const second = await harness.engine.backup();
		expect(second.summary.files).toMatchObject({ new: 1, changed: 1, unchanged: 3 });
		expect(second.summary.bytes.read).toBe("changed\n".length * 1000 + "new\n".length);
		// The states come back to the catalog, the folders with unchanged files too: the next run reads nothing.
		expect(folderWrites(written)).toHaveLength(4);
		harness.clock.advance(3_600_000);
		const third = await harness.engine.backup();
		expect(third.summary.files).toMatchObject({ new: 0, changed: 0, unchanged: 5 });
		expect(third.summary.bytes.read).toBe(0);
		const target = join(harness.dir, "restored");
		await harness.engine.restore(third.snapshot?.id as string, { target });
		expect(await describeTree(join(target, "src"))).toEqual(await describeTree(src));
	});

	it("without a catalog, finds each source root of the last snapshot by its name, whatever order the config lists them in", async () => {
		harness = await createHarness({
			sets: (dir) => ({
				main: setConfig(dir, {
					sources: [
						{ type: "fs", path: join(dir, "src/zeta") },
						{ type: "fs", path: join(dir, "src/alpha") },
						{ type: "fs", path: join(dir, "other/alpha") },
					],
				}),
			}),
		});
		for (const root of ["src/zeta", "src/alpha", "other/alpha"]) {
			await mkdir(join(harness.dir, root, "sub"), { recursive: true });
			await writeFile(join(harness.dir, root, "f.txt"), `${root}\n`.repeat(100));
			await writeFile(join(harness.dir, root, "sub/g.txt"), `${root} below\n`.repeat(100));
		}
		await harness.engine.init();
		await harness.engine.backup();
		await harness.reopen({ freshCatalog: true });
		harness.clock.advance(3_600_000);
		await writeFile(join(harness.dir, "other/alpha/sub/g.txt"), "changed\n");
		const second = await harness.engine.backup();
		expect(second.summary.files).toMatchObject({ new: 0, changed: 1, unchanged: 5 });
		expect(second.summary.bytes.read).toBe("changed\n".length);
		const target = join(harness.dir, "restored");
		await harness.engine.restore(second.snapshot?.id as string, { target });
		for (const [root, name] of [
			["src/zeta", "zeta"],
			["src/alpha", "alpha"],
			["other/alpha", "alpha-2"],
		])
			expect(await describeTree(join(target, name)), root).toEqual(await describeTree(join(harness.dir, root)));
	});

	it("--reread reads every file whatever the catalog and the last snapshot say, and stores nothing already stored", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await mkdir(join(src, "a"), { recursive: true });
		await writeFile(join(src, "a/x.txt"), "x\n".repeat(5000));
		await writeFile(join(src, "y.txt"), "y\n".repeat(5000));
		await harness.engine.init();
		await harness.engine.backup();
		harness.clock.advance(3_600_000);
		const again = await harness.engine.backup(undefined, { reread: true });
		expect(again.summary.files).toMatchObject({ new: 0, changed: 0, unchanged: 0, reincluded: 2 });
		expect(again.summary.bytes.read).toBe(20_000);
		expect(again.summary.blobs.new).toBe(0);
		// Without the catalog too: the last snapshot is not asked.
		await harness.reopen({ freshCatalog: true });
		harness.clock.advance(3_600_000);
		const fresh = await harness.engine.backup(undefined, { reread: true });
		expect(fresh.summary.files).toMatchObject({ new: 2, unchanged: 0 });
		expect(fresh.summary.bytes.read).toBe(20_000);
	});

	it("a complete catalog asks the last snapshot for no tree, new folders or not", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await mkdir(join(src, "a"), { recursive: true });
		await writeFile(join(src, "a/x.txt"), "x\n");
		await harness.engine.init();
		await harness.engine.backup();
		harness.clock.advance(3_600_000);
		for (let i = 0; i < 20; i++) {
			await mkdir(join(src, `new-${i}/deeper`), { recursive: true });
			await writeFile(join(src, `new-${i}/deeper/y.txt`), `${i}\n`);
		}
		const asked = vi.spyOn(ParentTrees.prototype, "statesFor");
		try {
			const second = await harness.engine.backup();
			expect(second.summary.files).toMatchObject({ new: 20, unchanged: 1 });
			expect(asked).not.toHaveBeenCalled();
			// Without the catalog, the same run asks it.
			await harness.reopen({ freshCatalog: true });
			harness.clock.advance(3_600_000);
			const third = await harness.engine.backup();
			expect(third.summary.files).toMatchObject({ new: 0, unchanged: 21 });
			expect(asked).toHaveBeenCalled();
		} finally {
			asked.mockRestore();
		}
	});

	it("a root that is a file is remembered too: unchanged on the next run", async () => {
		harness = await createHarness({
			sets: (dir) => ({ main: setConfig(dir, { sources: [{ type: "fs", path: join(dir, "src/only.txt") }] }) }),
		});
		await writeFile(join(harness.dir, "src/only.txt"), "one file\n");
		await harness.engine.init();
		expect((await harness.engine.backup()).summary.files).toMatchObject({ new: 1 });
		harness.clock.advance(3_600_000);
		const written = recordWrites(harness);
		expect((await harness.engine.backup()).summary.files).toMatchObject({ new: 0, unchanged: 1 });
		expect(folderWrites(written)).toEqual([]);
		// Without the catalog, as the last snapshot has it.
		await harness.reopen({ freshCatalog: true });
		harness.clock.advance(3_600_000);
		const fresh = await harness.engine.backup();
		expect(fresh.summary.files).toMatchObject({ new: 0, unchanged: 1 });
		expect(fresh.summary.bytes.read).toBe(0);
	});

	it("states an earlier layout kept a file to a value are dropped by the next backup, other sets' left", async () => {
		harness = await createHarness();
		await writeFile(join(harness.dir, "src/kept.txt"), "kept\n");
		await harness.engine.init();
		const { repository } = await harness.engine.open();
		const mine = `file:${repository.id}:main:${join(harness.dir, "src")}:${Buffer.from("kept.txt").toString("base64")}`;
		const otherSet = `file:${repository.id}:other:${join(harness.dir, "src")}:${Buffer.from("kept.txt").toString("base64")}`;
		await harness.catalog.set(mine, "an old state");
		await harness.catalog.set(otherSet, "an old state");
		expect((await harness.engine.backup()).summary.files).toMatchObject({ new: 1 });
		expect(await harness.catalog.get(mine)).toBeUndefined();
		expect(await harness.catalog.get(otherSet)).toBe("an old state");
	});
});
