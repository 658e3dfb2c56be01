import { appendFile, mkdir, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { describeTree, pseudoRandom } from "./support/trees.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

async function makeTree(src: string): Promise<void> {
	await mkdir(join(src, "docs/deep/deeper"), { recursive: true });
	await mkdir(join(src, "empty-dir"), { recursive: true });
	await writeFile(join(src, "small.txt"), "hello holdfast\n");
	await writeFile(join(src, "empty.bin"), Buffer.alloc(0));
	await writeFile(join(src, "large.bin"), pseudoRandom(5 * 1024 * 1024 + 123, 1));
	await writeFile(join(src, "docs/copy-of-large.bin"), pseudoRandom(5 * 1024 * 1024 + 123, 1));
	await writeFile(join(src, "docs/binary.dat"), Buffer.from([0, 1, 2, 255, 254, 0, 0, 7]));
	await writeFile(join(src, "docs/deep/deeper/note.md"), "# deep\n".repeat(1000));
	await writeFile(join(src, "compressible.txt"), "the same line again\n".repeat(100_000));
	await symlink("small.txt", join(src, "link-to-small"));
	await symlink("../nowhere", join(src, "docs/dangling"));
	await utimes(join(src, "small.txt"), new Date("2020-05-05T05:05:05Z"), new Date("2020-05-05T05:05:05Z"));
}

describe("backup and restore round trip", () => {
	it("restores two snapshots of a changing tree exactly, bytes and metadata", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await makeTree(src);
		await harness.engine.init();
		const first = await harness.engine.backup();
		const firstTree = await describeTree(src);
		expect(first.summary.files.new).toBe(7);
		// The duplicate 5 MiB file is stored once: far less than two copies were added.
		expect(first.summary.bytes.added).toBeLessThan(5 * 1024 * 1024 + 4 * 1024 * 1024);

		harness.clock.advance(86_400_000);
		await appendFile(join(src, "large.bin"), "appended");
		await writeFile(join(src, "docs/new.txt"), "new file");
		await rm(join(src, "docs/binary.dat"));
		const second = await harness.engine.backup();
		const secondTree = await describeTree(src);
		expect(second.summary.files.new).toBe(1);
		expect(second.summary.files.changed).toBe(1);

		for (const [result, expected] of [
			[first, firstTree],
			[second, secondTree],
		] as const) {
			const target = join(harness.dir, `restore-${result.snapshot?.id}`);
			await harness.engine.restore(result.snapshot?.id as string, { target });
			expect(await describeTree(join(target, "src"))).toEqual(expected);
		}
	});

	it("a second backup of an unchanged tree reads no content and uploads only the snapshot", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await makeTree(src);
		await harness.engine.init();
		await harness.engine.backup();
		harness.clock.advance(3_600_000);
		const again = await harness.engine.backup();
		expect(again.summary.bytes.read).toBe(0);
		expect(again.summary.files.unchanged).toBe(7);
		expect(again.summary.blobs.new).toBe(0);
		// The snapshot, plus an index object recording this run's locks.
		expect(again.summary.objects.uploaded).toBeLessThanOrEqual(2);
		expect(again.summary.bytes.uploaded).toBeLessThan(4096);
	});

	it("a repository kept inside the backed-up folder is left out, not backed up into itself", async () => {
		harness = await createHarness({
			sets: (dir) => ({
				main: setConfig(dir, { destination: { type: "fs", path: join(dir, "src/repo") } }),
				// Another set may copy that repository as files: only a set's own repository is left out.
				copy: setConfig(dir, {
					sources: [{ type: "fs", path: join(dir, "src/repo") }],
					destination: { type: "fs", path: join(dir, "copy") },
				}),
			}),
		});
		const src = join(harness.dir, "src");
		await writeFile(join(src, "a.txt"), "a");
		await harness.engine.init("main");
		await harness.engine.backup("main");
		harness.clock.advance(3_600_000);
		const again = await harness.engine.backup("main");
		expect(again.summary.files).toMatchObject({ new: 0, changed: 0, unchanged: 1 });
		expect(harness.logger.lines.some((l) => /src\/repo: left out, it is this set's own repository/.test(l.line))).toBe(true);
		const target = join(harness.dir, "out");
		await harness.engine.restore("latest", { setName: "main", target });
		expect(await readFile(join(target, "src/a.txt"), "utf8")).toBe("a");
		await expect(stat(join(target, "src/repo"))).rejects.toMatchObject({ code: "ENOENT" });

		await harness.engine.init("copy");
		const copied = await harness.engine.backup("copy");
		expect(copied.summary.files.new).toBeGreaterThan(3);
	});

	it("a file whose size the source leaves unknown (0) is read again each run, never recorded as 0 bytes", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await writeFile(join(src, "dump.sql"), "a dump of eleven bytes\n");
		await writeFile(join(src, "empty"), "");
		// As a command's output would be listed: the size is known only once read.
		harness.host.hooks.scan.tap("unknown-size", (entries) =>
			(async function* () {
				for await (const entry of entries) yield entry.type === "file" ? { ...entry, size: 0 } : entry;
			})(),
		);
		await harness.engine.init();
		const first = await harness.engine.backup();
		harness.clock.advance(3_600_000);
		const again = await harness.engine.backup();
		expect(again.summary.files).toMatchObject({ changed: 1, unchanged: 1 });
		expect(again.snapshot?.snapshot.summary.bytes).toBe(23);
		expect(again.snapshot?.snapshot.summary.bytes).toBe(first.snapshot?.snapshot.summary.bytes);
	});

	it("restores from the destination and the password alone after the catalog is lost", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await makeTree(src);
		await harness.engine.init();
		await harness.engine.backup();
		const expected = await describeTree(src);
		await harness.reopen({ freshCatalog: true });
		const target = join(harness.dir, "restored");
		await harness.engine.restore("latest", { target });
		expect(await describeTree(join(target, "src"))).toEqual(expected);
		// And the next backup is still correct: it re-reads, finds every blob stored, adds nothing.
		const next = await harness.engine.backup();
		expect(next.summary.blobs.new).toBe(0);
	});

	it("fails with one clear line on a wrong password", async () => {
		harness = await createHarness();
		await writeFile(join(harness.dir, "src/a"), "a");
		await harness.engine.init();
		await harness.engine.backup();
		await harness.reopen({ password: "wrong" });
		await expect(harness.engine.snapshots()).rejects.toThrow(/^wrong password for the repository at fs:/);
	});

	it("restores only included paths and keeps existing files unless asked to overwrite", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await makeTree(src);
		await harness.engine.init();
		await harness.engine.backup();
		const target = join(harness.dir, "partial");
		const { summary } = await harness.engine.restore("latest", { target, include: (p) => p.startsWith("src/docs/deep") });
		expect(summary.files).toBe(1);
		expect(await readFile(join(target, "src/docs/deep/deeper/note.md"), "utf8")).toContain("# deep");
		await writeFile(join(target, "src/docs/deep/deeper/note.md"), "local edit");
		const kept = await harness.engine.restore("latest", { target, include: (p) => p.startsWith("src/docs/deep") });
		expect(kept.summary.skippedExisting).toEqual(["src/docs/deep/deeper/note.md"]);
		expect(await readFile(join(target, "src/docs/deep/deeper/note.md"), "utf8")).toBe("local edit");
		await harness.engine.restore("latest", { target, include: (p) => p.startsWith("src/docs/deep"), overwrite: true });
		expect(await readFile(join(target, "src/docs/deep/deeper/note.md"), "utf8")).toContain("# deep");
	});

	it("picks the newest snapshot at or before a time", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await writeFile(join(src, "v"), "one");
		await harness.engine.init();
		const one = await harness.engine.backup();
		harness.clock.advance(7 * 86_400_000);
		await writeFile(join(src, "v"), "two!");
		await harness.engine.backup();
		const target = join(harness.dir, "at");
		const restored = await harness.engine.restore("latest", { target, at: new Date(harness.clock.now().getTime() - 86_400_000) });
		expect(restored.snapshot.id).toBe(one.snapshot?.id);
		expect(await readFile(join(target, "src/v"), "utf8")).toBe("one");
		// An ID and a time name two snapshots: neither is silently ignored.
		const later = join(harness.dir, "at-and-id");
		const id = String(one.snapshot?.id).slice(0, 12);
		await expect(harness.engine.restore(id, { target: later, at: harness.clock.now() })).rejects.toThrow(
			`snapshot "${id}" and --at name two snapshots: give latest with --at, or the ID alone`,
		);
		await expect(stat(later)).rejects.toThrow("ENOENT");
	});

	it("restores a snapshot `list` picked without listing the repository again", async () => {
		harness = await createHarness();
		await writeFile(join(harness.dir, "src", "v"), "one");
		await harness.engine.init();
		await harness.engine.backup();
		const listed = await harness.engine.list("latest");
		// Over S3 each listing is a round trip: the index and the snapshots were listed once, by `list`.
		const listings = vi.spyOn(listed.open.destination, "listVersions");
		const target = join(harness.dir, "picked");
		const restored = await harness.engine.restore(listed, { target });
		expect(restored.snapshot.id).toBe(listed.snapshot.id);
		expect(await readFile(join(target, "src/v"), "utf8")).toBe("one");
		expect(listings).not.toHaveBeenCalled();
		// By its selector, a restore opens the repository and lists it itself.
		await harness.engine.restore("latest", { target: join(harness.dir, "by-selector") });
		expect(listings).toHaveBeenCalled();
	});
});
