import { mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { holdfast } from "./support/cli.js";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { projectEngine } from "./support/project-session.js";
import { pseudoRandom } from "./support/trees.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

/** Every stored version of a pack, overwritten in the middle: no version of it verifies any more. */
async function damagePack(repo: string, packKey: string): Promise<void> {
	const folder = join(repo, "objects", `${packKey}.versions`);
	for (const name of await readdir(folder)) {
		if (!name.endsWith(".data")) continue;
		const file = await open(join(folder, name), "r+");
		await file.write(Buffer.from("XXXXXXXXXXXXXXXX"), 0, 16, 5000);
		await file.close();
	}
}

/** Every stored version of a pack, overwritten at `offset`. */
async function damagePackAt(repo: string, packKey: string, offset: number): Promise<void> {
	const folder = join(repo, "objects", `${packKey}.versions`);
	for (const name of await readdir(folder)) {
		if (!name.endsWith(".data")) continue;
		const file = await open(join(folder, name), "r+");
		await file.write(Buffer.from("XXXXXXXX"), 0, 8, offset);
		await file.close();
	}
}

describe("restore from a damaged repository", () => {
	it("a blob damaged in a pack of many small files costs the file that has it, not its neighbours in the pack", async () => {
		harness = await createHarness({ sets: (dir) => ({ main: setConfig(dir, { packSizeMiB: 1 }) }) });
		const src = join(harness.dir, "src");
		for (let i = 0; i < 40; i++) await writeFile(join(src, `file-${i}.bin`), pseudoRandom(3000, i + 10));
		await harness.engine.init();
		await harness.engine.backup();
		const { repository } = await harness.engine.open();
		const { entries } = await harness.engine.entries(await harness.engine.list("latest"));
		const victim = entries.find((e) => e.path.endsWith("file-17.bin"))?.node.content?.[0];
		const location = victim === undefined ? undefined : repository.index.blobs.get(victim);
		if (!location) throw new Error("file-17.bin has no blob in the index");
		// All 40 files in the one pack, read with one request: one blob of it damaged.
		const shared = entries.filter((e) =>
			e.node.content?.every((id) => repository.index.blobs.get(id)?.packKey === location.packKey),
		);
		expect(shared).toHaveLength(40);
		await damagePackAt(join(harness.dir, "repo"), location.packKey, location.offset + Math.floor(location.length / 2));

		const out = join(harness.dir, "out");
		const seen: string[] = [];
		const { summary } = await harness.engine.restore("latest", { target: out, onFile: (path) => seen.push(path) });
		expect(summary.lost).toEqual([join(out, "src/file-17.bin")]);
		expect(summary.files).toBe(39);
		// The lost file too: a progress counted from the snapshot's files ends at their total.
		expect(seen.sort()).toEqual(Array.from({ length: 40 }, (_, i) => `src/file-${i}.bin`).sort());
		for (let i = 0; i < 40; i++) {
			if (i === 17) continue;
			expect((await readFile(join(out, `src/file-${i}.bin`))).equals(pseudoRandom(3000, i + 10)), `file-${i}.bin`).toBe(true);
		}
		expect((await readdir(join(out, "src"))).sort()).not.toContain("file-17.bin");
		expect(harness.logger.lines.map((l) => l.line)).toContainEqual(
			expect.stringMatching(/src\/file-17\.bin: not restored: blob [0-9a-f]{16} in data\/.*: authentication failed/),
		);
	});

	it("a folder the target cannot hold is passed over whole: a damaged tree or a socket inside it is neither lost nor counted", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await mkdir(join(src, "docs/deep"), { recursive: true });
		await writeFile(join(src, "docs/a.txt"), "a\n");
		await writeFile(join(src, "docs/deep/b.txt"), "b\n");
		const server = createServer();
		await new Promise<void>((resolve) => server.listen(join(src, "docs/sock"), resolve));
		await harness.engine.init();
		await harness.engine.backup().finally(() => new Promise((resolve) => server.close(resolve)));
		const { repository } = await harness.engine.open();
		const { entries } = await harness.engine.entries(await harness.engine.list("latest"));
		expect(entries.find((e) => e.path === "src/docs/sock")?.node.type).toBe("socket");
		const deep = entries.find((e) => e.path === "src/docs/deep")?.node.subtree;
		const location = deep === undefined ? undefined : repository.index.blobs.get(deep);
		if (!location) throw new Error("docs/deep has no tree in the index");
		await damagePackAt(join(harness.dir, "repo"), location.packKey, location.offset + Math.floor(location.length / 2));
		// The catalog keeps the trees it has seen: a fresh one reads them from the store.
		await harness.reopen({ freshCatalog: true });

		// A listing names the folder it cannot look into and lists the rest.
		const listing = await harness.engine.entries(await harness.engine.list("latest"));
		expect(listing.lost).toEqual([{ path: "src/docs/deep", reason: expect.stringMatching(/authentication failed/) }]);
		expect(listing.entries.map((e) => e.path)).toEqual(["src", "src/docs", "src/docs/a.txt", "src/docs/deep", "src/docs/sock"]);

		const out = join(harness.dir, "out");
		await mkdir(join(out, "src"), { recursive: true });
		await writeFile(join(out, "src/docs"), "in the way\n");
		const seen: string[] = [];
		const { summary } = await harness.engine.restore("latest", { target: out, onFile: (path) => seen.push(path) });
		expect(summary.conflicts).toEqual(["src/docs"]);
		expect(summary.lost).toEqual([]);
		expect(summary.special).toBe(0);
		expect(seen).toEqual(["src/docs/a.txt"]);
		// The same with --include, where the folders are made only as something inside them is restored.
		const included = await harness.engine.restore("latest", { target: out, include: (path) => path === "src/docs/a.txt" });
		expect(included.summary).toMatchObject({ conflicts: ["src/docs"], lost: [], special: 0 });
		// Where the folder can be made, the same tree is lost and the socket recorded.
		const elsewhere = await harness.engine.restore("latest", { target: join(harness.dir, "elsewhere") });
		expect(elsewhere.summary.lost).toEqual([join(harness.dir, "elsewhere", "src/docs/deep/")]);
		expect(elsewhere.summary.special).toBe(1);
	});

	it("a file of several blobs read with a damaged neighbour is restored whole", async () => {
		harness = await createHarness({ sets: (dir) => ({ main: setConfig(dir, { packSizeMiB: 8 }) }) });
		const src = join(harness.dir, "src");
		const big = pseudoRandom(3_400_000, 99);
		await writeFile(join(src, "a-big.bin"), big);
		for (let i = 0; i < 8; i++) await writeFile(join(src, `b-small-${i}.bin`), pseudoRandom(3000, i + 50));
		await harness.engine.init();
		await harness.engine.backup();
		const { repository } = await harness.engine.open();
		const { entries } = await harness.engine.entries(await harness.engine.list("latest"));
		const bigBlobs = entries.find((e) => e.path.endsWith("a-big.bin"))?.node.content ?? [];
		const victim = entries.find((e) => e.path.endsWith("b-small-5.bin"))?.node.content?.[0];
		const location = victim === undefined ? undefined : repository.index.blobs.get(victim);
		if (!location) throw new Error("b-small-5.bin has no blob in the index");
		// The large file's blobs in the victim's pack, read with it.
		expect(bigBlobs.length).toBeGreaterThan(1);
		expect(bigBlobs.every((id) => repository.index.blobs.get(id)?.packKey === location.packKey)).toBe(true);
		await damagePackAt(join(harness.dir, "repo"), location.packKey, location.offset + Math.floor(location.length / 2));

		const out = join(harness.dir, "out");
		const { summary } = await harness.engine.restore("latest", { target: out });
		expect(summary.lost).toEqual([join(out, "src/b-small-5.bin")]);
		expect((await readFile(join(out, "src/a-big.bin"))).equals(big)).toBe(true);
		for (let i = 0; i < 8; i++) {
			if (i === 5) continue;
			expect((await readFile(join(out, `src/b-small-${i}.bin`))).equals(pseudoRandom(3000, i + 50)), `b-small-${i}`).toBe(true);
		}
		// No temporary file is left behind.
		expect((await readdir(join(out, "src"))).filter((name) => !/^(a-big|b-small-\d)\.bin$/.test(name))).toEqual([]);
	});

	it("takes each blob from a version of the pack where it verifies: an attacker's newer version costs nothing the locked one holds", async () => {
		harness = await createHarness({ sets: (dir) => ({ main: setConfig(dir, { packSizeMiB: 1 }) }) });
		const src = join(harness.dir, "src");
		for (let i = 0; i < 6; i++) await writeFile(join(src, `f${i}.bin`), pseudoRandom(3000, i + 1));
		await harness.engine.init();
		await harness.engine.backup();
		const { repository } = await harness.engine.open();
		const { entries } = await harness.engine.entries(await harness.engine.list("latest"));
		const locate = (name: string) => {
			const id = entries.find((e) => e.path.endsWith(name))?.node.content?.[0];
			const location = id === undefined ? undefined : repository.index.blobs.get(id);
			if (!location) throw new Error(`${name} has no blob in the index`);
			return location;
		};
		const [first, second] = [locate("f0.bin"), locate("f4.bin")];
		expect(second.packKey).toBe(first.packKey);
		const folder = join(harness.dir, "repo", "objects", `${first.packKey}.versions`);
		const [locked] = (await readdir(folder)).filter((name) => name.endsWith(".data"));
		const pristine = await readFile(join(folder, locked as string));
		// The locked version rots where f0 lies; the attacker's newer one is whole but for f4.
		await damagePackAt(join(harness.dir, "repo"), first.packKey, first.offset + Math.floor(first.length / 2));
		const forged = Buffer.from(pristine);
		forged.write("YYYYYYYY", second.offset + Math.floor(second.length / 2), "latin1");
		await repository.destination.put(first.packKey, forged);

		const out = join(harness.dir, "out");
		const { summary } = await harness.engine.restore("latest", { target: out });
		expect(summary.lost).toEqual([]);
		for (let i = 0; i < 6; i++) {
			expect((await readFile(join(out, `src/f${i}.bin`))).equals(pseudoRandom(3000, i + 1)), `f${i}.bin`).toBe(true);
		}
	});

	it("restores every file it can read, names the ones whose data is damaged, and says it failed for them", async () => {
		harness = await createHarness({ sets: (dir) => ({ main: setConfig(dir, { packSizeMiB: 1 }) }) });
		const src = join(harness.dir, "src");
		await writeFile(join(src, "damaged.bin"), pseudoRandom(1_500_000, 1));
		await writeFile(join(src, "small.txt"), "small");
		await harness.engine.init();
		await harness.engine.backup();
		// Backed up in a run of its own, so no pack holds blobs of both files: read at once, the two
		// files' blobs went into packs in whichever order the reads ended. A minute later: two
		// snapshots of the same instant leave "latest" to their IDs.
		harness.clock.advance(60_000);
		await writeFile(join(src, "intact.bin"), pseudoRandom(1_500_000, 2));
		await harness.engine.backup();
		const { repository } = await harness.engine.open();
		// A pack that holds blobs of damaged.bin and nothing of intact.bin.
		const { entries } = await harness.engine.entries(await harness.engine.list("latest"));
		const damagedNode = entries.find((e) => e.path.endsWith("damaged.bin"))?.node;
		const intactNode = entries.find((e) => e.path.endsWith("intact.bin"))?.node;
		const packOf = (id: string) => repository.index.blobs.get(id)?.packKey ?? "";
		const intactPacks = new Set((intactNode?.content ?? []).map(packOf));
		const target = (damagedNode?.content ?? []).map(packOf).find((key) => !intactPacks.has(key));
		if (!target) throw new Error("the two files share every pack");
		await damagePack(join(harness.dir, "repo"), target);

		const out = join(harness.dir, "out");
		const { summary } = await harness.engine.restore("latest", { target: out });
		// damaged.bin is lost, and whatever else had data in that pack; intact.bin is whole.
		expect(summary.lost).toContain(join(out, "src/damaged.bin"));
		expect(summary.lost).not.toContain(join(out, "src/intact.bin"));
		expect((await readFile(join(out, "src/intact.bin"))).equals(pseudoRandom(1_500_000, 2))).toBe(true);
		const small = summary.lost.includes(join(out, "src/small.txt"));
		if (!small) expect(await readFile(join(out, "src/small.txt"), "utf8")).toBe("small");
		// A lost file leaves nothing behind: no partial file, no temporary name.
		expect(await readdir(join(out, "src"))).toEqual(small ? ["intact.bin"] : ["intact.bin", "small.txt"]);
		expect(summary.files).toBe(3 - summary.lost.length);
		expect(harness.logger.lines.map((l) => l.line)).toContainEqual(
			// As the blob, when its read held others too; as the pack, when it was the read's only blob (the chunker's cuts decide).
			expect.stringMatching(
				/src\/damaged\.bin: not restored: (blob [0-9a-f]{16} in data\/.*: authentication failed|data\/.*no version of it verifies)/,
			),
		);
	});
});

describe("the commands over a damaged tree", () => {
	it("ls lists the rest and names the folder, restore with --include restores the rest; both exit 1", async () => {
		const dir = await mkdtemp(join(tmpdir(), "holdfast-damaged-tree-"));
		try {
			await mkdir(join(dir, "data/docs/deep"), { recursive: true });
			await writeFile(join(dir, "data/docs/a.txt"), "a\n");
			await writeFile(join(dir, "data/docs/deep/b.txt"), "b\n");
			await writeFile(
				join(dir, "holdfast.yaml"),
				`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination"]
sets:
  main:
    sources: [{ type: fs, path: ./data }]
    destination: { type: fs, path: ./repo }
    retention: { days: 30 }
`,
			);
			await projectEngine(dir)((engine) => engine.init());
			await projectEngine(dir)((engine) => engine.backup());
			const location = await projectEngine(dir)(async (engine) => {
				const listed = await engine.list("latest");
				const deep = (await engine.entries(listed)).entries.find((e) => e.path === "data/docs/deep")?.node.subtree;
				return deep === undefined ? undefined : listed.open.repository.index.blobs.get(deep);
			});
			if (!location) throw new Error("docs/deep has no tree in the index");
			await damagePackAt(join(dir, "repo"), location.packKey, location.offset + Math.floor(location.length / 2));
			// The catalog keeps the trees it has seen: without it they are read from the store.
			await rm(join(dir, ".holdfast"), { recursive: true, force: true });

			const ls = holdfast(dir, ["ls", "latest"]);
			expect(ls.code, ls.stderr).toBe(1);
			expect(ls.stdout).toContain("data/docs/a.txt");
			expect(ls.stderr).toMatch(/data\/docs\/deep\/: folder's contents cannot be listed: .*authentication failed/);
			expect(ls.stderr).not.toMatch(/\n\s+at /);
			const json = holdfast(dir, ["ls", "latest", "--json"]);
			expect(json.code).toBe(1);
			const listed = JSON.parse(json.stdout) as { path: string; unreadable?: string }[];
			expect(listed.find((e) => e.path === "data/docs/deep")?.unreadable).toMatch(/authentication failed/);
			expect(listed.filter((e) => e.unreadable !== undefined)).toHaveLength(1);
			// A path inside the damaged folder is not said to be missing: it cannot be read.
			const inside = holdfast(dir, ["ls", "latest", "data/docs/deep/b.txt"]);
			expect(inside.code).toBe(1);
			expect(inside.stderr).toMatch(
				/"data\/docs\/deep\/b\.txt" cannot be listed: it lies in data\/docs\/deep\/, whose contents cannot be read: /,
			);
			const only = holdfast(dir, ["restore", "latest", "--target", join(dir, "none"), "--include", "data/docs/deep/**"]);
			expect(only.code).toBe(1);
			expect(only.stderr).toMatch(
				/--include data\/docs\/deep\/\*\*: matches nothing that can be read in snapshot [0-9a-f]{12}; the contents of data\/docs\/deep\/ cannot be read and may hold it; nothing was restored/,
			);

			const target = join(dir, "out");
			const restore = holdfast(dir, ["restore", "latest", "--target", target, "--include", "data/docs/**"]);
			expect(restore.code, restore.stderr).toBe(1);
			expect(await readFile(join(target, "data/docs/a.txt"), "utf8")).toBe("a\n");
			expect(restore.stderr).toMatch(/docs\/deep\/: folder not restored, its tree cannot be read/);
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});
});
