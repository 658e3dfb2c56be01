import { renameSync, unlinkSync, writeFileSync } from "node:fs";
import { mkdir, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ContainerModule, definePlugin, type PluginDefinition, type Source, type SourceEntry, TOKENS } from "@holdfast/core";
import { FsSource } from "@holdfast/plugin-fs-source";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

/** A scan tap that stores every file upper-cased, through `read()` alone. */
function upperCase(entries: AsyncIterable<SourceEntry>): AsyncIterable<SourceEntry> {
	return (async function* () {
		for await (const entry of entries) {
			if (entry.type !== "file") {
				yield entry;
				continue;
			}
			const read = entry.read as () => AsyncIterable<Uint8Array>;
			yield {
				...entry,
				read: async function* () {
					for await (const chunk of read()) yield Buffer.from(Buffer.from(chunk).toString("utf8").toUpperCase());
				},
			};
		}
	})();
}

describe("small files read by the source's direct read", () => {
	it("are stored as read; with a scan tap that wraps read(), every file goes through the tap", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		const names = Array.from({ length: 300 }, (_, i) => `f${String(i).padStart(3, "0")}.txt`);
		const content = (name: string) => `content of ${name}\n`.repeat(1 + (Number(name.slice(1, 4)) % 7));
		for (const name of names) await writeFile(join(src, name), content(name));
		await harness.engine.init();
		const direct = await harness.engine.backup();
		expect(direct.summary.files.new).toBe(names.length);
		const plain = join(harness.dir, "plain");
		await harness.engine.restore(direct.snapshot?.id as string, { target: plain });
		for (const name of names) expect(await readFile(join(plain, "src", name), "utf8")).toBe(content(name));

		// Every file touched, so that each is read again, and the tap set.
		const touched = new Date("2030-02-01T00:00:00Z");
		for (const name of names) await utimes(join(src, name), touched, touched);
		await harness.reopen();
		harness.host.hooks.scan.tap("upper", upperCase);
		harness.clock.advance(3_600_000);
		const tapped = await harness.engine.backup();
		expect(tapped.summary.files.changed).toBe(names.length);
		const upper = join(harness.dir, "upper");
		await harness.engine.restore(tapped.snapshot?.id as string, { target: upper });
		for (const name of names) expect(await readFile(join(upper, "src", name), "utf8")).toBe(content(name).toUpperCase());
	});
});

describe("small files read by the workers from their paths", () => {
	it("reads again a file changed after it was listed, and skips one gone, with the others stored as read", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		const names = Array.from({ length: 200 }, (_, i) => `f${String(i).padStart(3, "0")}.txt`);
		for (const name of names) await writeFile(join(src, name), `first ${name}\n`);
		await harness.engine.init();
		// Listed as they were; changed and removed as the walk takes them, before the workers read the batch.
		harness.host.hooks.didScanEntry.tap("meddle", ({ entry }) => {
			const name = entry.relPath.toString();
			if (name === "f050.txt") writeFileSync(join(src, name), "changed after it was listed, and longer\n");
			if (name === "f120.txt") unlinkSync(join(src, name));
		});
		const result = await harness.engine.backup();
		expect(result.summary.files.new).toBe(names.length - 1);
		expect(result.summary.files.skipped).toBe(1);
		expect(result.warnings.map((w) => [w.path, w.reason.startsWith("skipped: ENOENT")])).toEqual([[join(src, "f120.txt"), true]]);
		// The snapshot's size is what it holds: the file read again as it is now, the one gone not at all.
		const held = names.filter((name) => name !== "f120.txt").map((name) => (name === "f050.txt" ? 40 : `first ${name}\n`.length));
		expect(result.snapshot?.snapshot.summary.bytes).toBe(held.reduce((sum, size) => sum + size, 0));
		const target = join(harness.dir, "restored");
		await harness.engine.restore(result.snapshot?.id as string, { target });
		expect((await readdir(join(target, "src"))).length).toBe(names.length - 1);
		expect(await readFile(join(target, "src", "f050.txt"), "utf8")).toBe("changed after it was listed, and longer\n");
		expect(await readFile(join(target, "src", "f051.txt"), "utf8")).toBe("first f051.txt\n");
		// The file read again is remembered as listed, not as read: the next run reads it once more.
		await harness.reopen();
		harness.clock.advance(3_600_000);
		const next = await harness.engine.backup();
		expect(next.summary.files).toMatchObject({ unchanged: names.length - 2, changed: 1, skipped: 0 });
	});
});

describe("a file saved by rename after it was listed", () => {
	it("is backed up as it is now, small or large, and the next run finds it unchanged", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		const names = Array.from({ length: 120 }, (_, i) => `f${String(i).padStart(3, "0")}.txt`);
		for (const name of names) await writeFile(join(src, name), `first ${name}\n`);
		// Large enough to be chunked, so read through the source's read(), not by the workers.
		const large = (fill: string) => Buffer.alloc(3 * 1024 * 1024, fill);
		await writeFile(join(src, "large.bin"), large("a"));
		await harness.engine.init();
		// An editor's save as the walk takes each file: a new file renamed over the one listed.
		const saved = new Map<string, string | Buffer>([
			["f050.txt", "saved by the editor after the walk listed it\n"],
			["large.bin", Buffer.concat([large("b"), Buffer.from("and a tail")])],
		]);
		harness.host.hooks.didScanEntry.tap("editor", ({ entry }) => {
			const name = entry.relPath.toString();
			const content = saved.get(name);
			if (content === undefined) return;
			writeFileSync(join(src, `${name}.new`), content);
			renameSync(join(src, `${name}.new`), join(src, name));
		});
		const result = await harness.engine.backup();
		expect(result.warnings).toEqual([]);
		expect(result.summary.files).toMatchObject({ new: names.length + 1, skipped: 0 });
		const sizes = names.map((name) => (saved.get(name) ?? `first ${name}\n`).length);
		expect(result.snapshot?.snapshot.summary.bytes).toBe(
			sizes.reduce((sum, size) => sum + size, 0) + (saved.get("large.bin") as Buffer).length,
		);
		const target = join(harness.dir, "restored");
		await harness.engine.restore(result.snapshot?.id as string, { target });
		expect(await readFile(join(target, "src", "f050.txt"), "utf8")).toBe(saved.get("f050.txt"));
		expect((await readFile(join(target, "src", "large.bin"))).equals(saved.get("large.bin") as Buffer)).toBe(true);
		expect(await readFile(join(target, "src", "f051.txt"), "utf8")).toBe("first f051.txt\n");
		// Remembered as read, with the new file's inode and times: nothing is read again.
		await harness.reopen();
		harness.clock.advance(3_600_000);
		const next = await harness.engine.backup();
		expect(next.summary.files).toMatchObject({ unchanged: names.length + 1, changed: 0, new: 0 });
	});
});

describe("small files taken by the walk", () => {
	it("go to be read before the walk waits on the source to list more, not once a batch is full", async () => {
		const listedFirst = Array.from({ length: 300 }, (_, i) => `a${String(i).padStart(3, "0")}.txt`);
		// A source that lists slowly after its first few hundred entries: while it does, an editor
		// saves the first files again by renaming a new copy over them. Tests run the workers' work
		// inline, so the batch is read as it is sent: what this shows is that it is sent then; with
		// worker threads its read follows within milliseconds.
		const slow = definePlugin({
			name: "slow-source",
			version: "1.0.0",
			engine: "^0.1.0",
			containerModule: new ContainerModule((options) => {
				options.bind(TOKENS.SourceType).toConstantValue({
					type: "slow",
					optionsSchema: { type: "object", properties: { path: { type: "string" } }, required: ["path"] },
					create: ({ path }: { path: string }) => {
						const fs = new FsSource({ path });
						return {
							roots: fs.roots,
							async *scan(options) {
								let seen = 0;
								for await (const entry of fs.scan(options)) {
									if (seen++ === 280) {
										for (const name of listedFirst.slice(0, 100)) {
											writeFileSync(join(path, `${name}.tmp`), `saved again ${name}\n`);
											renameSync(join(path, `${name}.tmp`), join(path, name));
										}
									}
									yield entry;
								}
							},
						} satisfies Source;
					},
				});
			}),
		}) as PluginDefinition;
		harness = await createHarness({
			extraBuiltins: new Map([["slow-source", slow]]),
			plugins: ["@holdfast/plugin-fs-destination", "slow-source"],
			sets: (dir) => ({ main: setConfig(dir, { sources: [{ type: "slow", path: join(dir, "src") }] }) }),
		});
		const src = join(harness.dir, "src");
		for (const name of listedFirst) await writeFile(join(src, name), `first ${name}\n`);
		await harness.engine.init();
		const result = await harness.engine.backup();
		// Read as listed, before they were saved again: none is skipped as replaced.
		expect(result.warnings).toEqual([]);
		expect(result.summary.files.new).toBe(listedFirst.length);
		const target = join(harness.dir, "restored");
		await harness.engine.restore(result.snapshot?.id as string, { target });
		expect(await readFile(join(target, "src", "a000.txt"), "utf8")).toBe("first a000.txt\n");
	});
});

describe("many folders of small files", () => {
	it("saves every folder's tree when more are open than the walk keeps, and each file restores", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		// Folders close faster than their batched files are sealed: the walk waits for trees to be saved, again and again.
		const folders = Array.from({ length: 600 }, (_, i) => `d${String(i).padStart(3, "0")}`);
		for (const folder of folders) {
			await mkdir(join(src, folder));
			await writeFile(join(src, folder, "a.txt"), `a of ${folder}\n`);
			await writeFile(join(src, folder, "b.txt"), `b of ${folder}\n`.repeat(3));
		}
		await harness.engine.init();
		const result = await harness.engine.backup();
		expect(result.summary.files.new).toBe(2 * folders.length);
		const target = join(harness.dir, "restored");
		await harness.engine.restore(result.snapshot?.id as string, { target });
		for (const folder of folders) {
			expect(await readFile(join(target, "src", folder, "a.txt"), "utf8")).toBe(`a of ${folder}\n`);
			expect(await readFile(join(target, "src", folder, "b.txt"), "utf8")).toBe(`b of ${folder}\n`.repeat(3));
		}
	});
});
