import { chmod, lstat, mkdir, readdir, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "./support/harness.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

async function backedUp(files: Record<string, string>): Promise<Harness> {
	const h = await createHarness();
	for (const [path, content] of Object.entries(files)) {
		await mkdir(join(h.dir, "src", path, ".."), { recursive: true });
		await writeFile(join(h.dir, "src", path), content);
	}
	await h.engine.init();
	await h.engine.backup();
	return h;
}

/** Content, mode and mtime of a file: what a write through a link would change. */
async function fingerprint(path: string) {
	const info = await lstat(path);
	return { content: await readFile(path, "utf8"), mode: info.mode, mtimeMs: info.mtimeMs };
}

describe("restore never writes outside its target", () => {
	it("--overwrite replaces a symlink to a file outside the target, never the file it points to", async () => {
		harness = await backedUp({ "secret.txt": "from the snapshot\n" });
		const target = join(harness.dir, "out");
		const outside = join(harness.dir, "outside.txt");
		await writeFile(outside, "outside, must stay\n");
		await chmod(outside, 0o600);
		await utimes(outside, new Date("2001-01-01T00:00:00Z"), new Date("2001-01-01T00:00:00Z"));
		const before = await fingerprint(outside);
		await mkdir(join(target, "src"), { recursive: true });
		await symlink(outside, join(target, "src/secret.txt"));

		await expect(harness.engine.restore("latest", { target })).rejects.toThrow(
			/^restore: .*\/out\/src\/secret\.txt: is a symlink in the target; not followed \(use --overwrite/,
		);
		expect(await fingerprint(outside)).toEqual(before);

		await harness.engine.restore("latest", { target, overwrite: true });
		expect((await lstat(join(target, "src/secret.txt"))).isFile()).toBe(true);
		expect(await readFile(join(target, "src/secret.txt"), "utf8")).toBe("from the snapshot\n");
		expect(await fingerprint(outside)).toEqual(before);
	});

	it("a symlinked folder inside the target receives nothing; --overwrite replaces the link with a folder", async () => {
		harness = await backedUp({ "docs/a.txt": "a\n", "docs/deep/b.txt": "b\n" });
		const target = join(harness.dir, "out");
		const elsewhere = join(harness.dir, "elsewhere");
		await mkdir(elsewhere);
		await mkdir(join(target, "src"), { recursive: true });
		await symlink(elsewhere, join(target, "src/docs"));

		await expect(harness.engine.restore("latest", { target })).rejects.toThrow(
			/^restore: .*\/out\/src\/docs: is a symlink in the target/,
		);
		expect(await readdir(elsewhere)).toEqual([]);
		// The same with include patterns, where folders are made only when something inside is restored.
		await expect(harness.engine.restore("latest", { target, include: (p) => p.endsWith("b.txt") })).rejects.toThrow(
			/src\/docs: is a symlink/,
		);
		expect(await readdir(elsewhere)).toEqual([]);

		await harness.engine.restore("latest", { target, overwrite: true });
		expect((await lstat(join(target, "src/docs"))).isDirectory()).toBe(true);
		expect(await readFile(join(target, "src/docs/deep/b.txt"), "utf8")).toBe("b\n");
		expect(await readdir(elsewhere)).toEqual([]);
		expect((await stat(elsewhere)).isDirectory()).toBe(true);
	});
});

describe("restore into a target that already has things", () => {
	it("a folder where the snapshot has a file, and the reverse, are conflicts reported once each; --overwrite replaces them", async () => {
		harness = await backedUp({ x: "x is a file\n", "d/inner.txt": "inner\n", "ok.txt": "ok\n" });
		const target = join(harness.dir, "out");
		await mkdir(join(target, "src/x/keep"), { recursive: true });
		await writeFile(join(target, "src/x/keep/me"), "mine");
		await writeFile(join(target, "src/d"), "d is a file here");

		const { summary } = await harness.engine.restore("latest", { target });
		expect(summary.conflicts.sort()).toEqual(["src/d", "src/x"]);
		expect(summary.partial).toBe(true);
		expect(await readFile(join(target, "src/ok.txt"), "utf8")).toBe("ok\n");
		expect(await readFile(join(target, "src/x/keep/me"), "utf8")).toBe("mine");
		expect(await readFile(join(target, "src/d"), "utf8")).toBe("d is a file here");
		const warnings = harness.logger.lines.filter((l) => l.level === "warn").map((l) => l.line);
		expect(warnings).toHaveLength(2);
		expect(warnings.find((w) => w.includes("/out/src/x:"))).toMatch(/a folder where the snapshot has a file; skipped/);
		expect(warnings.find((w) => w.includes("/out/src/d:"))).toMatch(/a file where the snapshot has a folder; skipped/);

		const again = await harness.engine.restore("latest", { target, overwrite: true });
		expect(again.summary.conflicts).toEqual([]);
		expect(again.summary.partial).toBe(false);
		expect(await readFile(join(target, "src/x"), "utf8")).toBe("x is a file\n");
		expect(await readFile(join(target, "src/d/inner.txt"), "utf8")).toBe("inner\n");
	});

	it("keeps and lists files that differ, counts identical ones as restored, and says whether that was asked", async () => {
		harness = await backedUp({ "same.txt": "same\n", "changed.txt": "original\n", "new.txt": "new\n" });
		const target = join(harness.dir, "out");
		await harness.engine.restore("latest", { target });
		await writeFile(join(target, "src/changed.txt"), "edited in the target\n");
		await rm(join(target, "src/new.txt"));
		const sameInode = (await stat(join(target, "src/same.txt"))).ino;

		const kept = await harness.engine.restore("latest", { target });
		expect(kept.summary.skippedExisting).toEqual(["src/changed.txt"]);
		expect(kept.summary.partial).toBe(true);
		expect(kept.summary.files).toBe(2);
		expect(kept.summary.unchanged).toBe(1);
		expect(await readFile(join(target, "src/changed.txt"), "utf8")).toBe("edited in the target\n");
		expect(await readFile(join(target, "src/new.txt"), "utf8")).toBe("new\n");
		// Identical means not written again: the same inode is still there.
		expect((await stat(join(target, "src/same.txt"))).ino).toBe(sameInode);

		const asked = await harness.engine.restore("latest", { target, skipExisting: true });
		expect(asked.summary.skippedExisting).toEqual(["src/changed.txt"]);
		expect(asked.summary.partial).toBe(false);

		const replaced = await harness.engine.restore("latest", { target, overwrite: true });
		expect(replaced.summary.skippedExisting).toEqual([]);
		expect(await readFile(join(target, "src/changed.txt"), "utf8")).toBe("original\n");
	});

	it("removes the temporary files a killed restore left, and nothing that only looks like them", async () => {
		harness = await backedUp({ "a.bin": "a".repeat(10_000), "sub/b.bin": "b".repeat(10_000) });
		const target = join(harness.dir, "out");
		await mkdir(join(target, "src/sub"), { recursive: true });
		await writeFile(join(target, "src/.a.bin.holdfast-tmp-0123456789ab"), "aaa");
		await writeFile(join(target, "src/sub/.b.bin.holdfast-tmp-ba9876543210"), "bb");
		await writeFile(join(target, "src/sub/.notes.holdfast-tmp-mine"), "a user's file");

		const { summary } = await harness.engine.restore("latest", { target });
		expect(summary.files).toBe(2);
		expect((await readdir(join(target, "src"))).sort()).toEqual(["a.bin", "sub"]);
		expect((await readdir(join(target, "src/sub"))).sort()).toEqual([".notes.holdfast-tmp-mine", "b.bin"]);
	});
});
