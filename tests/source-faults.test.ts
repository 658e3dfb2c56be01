import { execFileSync } from "node:child_process";
import { appendFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SourceEntry } from "@holdfast/core";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "./support/harness.js";
import { pseudoRandom } from "./support/trees.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

/** Wraps the scan stream of every run: `onEntry` may change the tree around the engine. */
function tapEntries(h: Harness, onEntry: (entry: SourceEntry) => SourceEntry | Promise<SourceEntry>) {
	h.host.hooks.scan.tap("test", (entries) =>
		(async function* () {
			for await (const entry of entries) yield await onEntry(entry);
		})(),
	);
}

/** Runs `after` each time the engine has read the whole of the file named `name`. */
function afterEachRead(h: Harness, name: string, after: () => Promise<void>) {
	tapEntries(h, (entry) => {
		if (entry.relPath.toString() !== name || !entry.read) return entry;
		const read = entry.read;
		return {
			...entry,
			read: async function* () {
				yield* read();
				await after();
			},
		};
	});
}

describe("source faults during a backup", () => {
	it("a file deleted between listing and reading is skipped with a warning; the run is partial", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await writeFile(join(src, "a"), "stays");
		await writeFile(join(src, "b"), "vanishes");
		await harness.engine.init();
		tapEntries(harness, async (entry) => {
			if (entry.relPath.toString() === "b") await rm(join(src, "b"));
			return entry;
		});
		const result = await harness.engine.backup();
		expect(result.partial).toBe(true);
		expect(result.summary.files.skipped).toBe(1);
		expect(result.warnings[0]?.path).toBe(join(src, "b"));
		expect(result.warnings[0]?.reason).toMatch(/ENOENT/);
		const target = join(harness.dir, "out");
		await harness.engine.restore("latest", { target });
		expect(await readdir(join(target, "src"))).toEqual(["a"]);
	});

	it("a file growing while read is re-read a bounded number of times, then stored flagged", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await writeFile(join(src, "log"), pseudoRandom(200_000, 9));
		await harness.engine.init();
		let reads = 0;
		afterEachRead(harness, "log", async () => {
			reads++;
			await appendFile(join(src, "log"), "more\n");
		});
		const result = await harness.engine.backup();
		expect(reads).toBe(3);
		expect(result.warnings.map((w) => w.reason)).toContain("kept changing while read (3 tries); stored as last read");
		const open = await harness.engine.open();
		const root = await open.repository.loadTree(result.snapshot?.snapshot.tree as string);
		const tree = await open.repository.loadTree(root.nodes[0]?.subtree as string);
		expect(tree.nodes.find((n) => n.name === "log")?.changing).toBe(true);
	});

	it("a file that changes once is re-read and stored consistent, without a warning", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await writeFile(join(src, "doc"), "version one");
		await harness.engine.init();
		let reads = 0;
		afterEachRead(harness, "doc", async () => {
			if (++reads === 1) await writeFile(join(src, "doc"), "version two, longer");
		});
		const result = await harness.engine.backup();
		expect(reads).toBe(2);
		expect(result.warnings).toEqual([]);
		const target = join(harness.dir, "out");
		await harness.engine.restore("latest", { target });
		expect(execFileSync("cat", [join(target, "src/doc")]).toString()).toBe("version two, longer");
	});

	it("a FIFO in the tree does not block the backup", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		execFileSync("mkfifo", [join(src, "pipe")]);
		await writeFile(join(src, "file"), "data");
		await harness.engine.init();
		const result = await harness.engine.backup();
		expect(result.partial).toBe(false);
		expect(result.summary.files.new).toBe(1);
	});

	it("names with any bytes round-trip through backup and restore", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		const names = [
			Buffer.from([0x66, 0xff, 0xfe]),
			Buffer.from("line\nbreak and spaces"),
			Buffer.from("b64:looks-encoded"),
			Buffer.from("x".repeat(250)),
		];
		for (const [i, name] of names.entries()) await writeFile(Buffer.concat([Buffer.from(`${src}/`), name]), `content ${i}`);
		await harness.engine.init();
		await harness.engine.backup();
		const target = join(harness.dir, "out");
		await harness.engine.restore("latest", { target });
		const restored = (await readdir(Buffer.from(join(target, "src")), { encoding: "buffer" })).sort(Buffer.compare);
		expect(restored).toEqual([...names].sort(Buffer.compare));
	});
});
