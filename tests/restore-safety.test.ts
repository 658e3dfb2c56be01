import { spawnSync } from "node:child_process";
import type { Dirent } from "node:fs";
import { chmod, link, lstat, mkdir, readdir, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { HOLDFAST_BIN, holdfast, startHoldfast } from "./support/cli.js";
import { createHarness, type Harness, tempDir } from "./support/harness.js";
import { projectEngine } from "./support/project-session.js";
import { describeTree, pseudoRandom } from "./support/trees.js";

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

	it("a file changed in place, its size, mode and times put back, is listed as differing, not counted as restored", async () => {
		harness = await backedUp({ "same.txt": "same\n" });
		const source = join(harness.dir, "src/victim.bin");
		await writeFile(source, pseudoRandom(3 * 1024 * 1024, 7));
		// A whole second: a Date puts it back exactly (the snapshot keeps nanoseconds).
		const mtime = new Date("2024-05-06T07:08:09Z");
		await utimes(source, mtime, mtime);
		// A minute later: at the same instant, which snapshot is "latest" would be left to their IDs.
		harness.clock.advance(60_000);
		await harness.engine.backup();
		const target = join(harness.dir, "out");
		await harness.engine.restore("latest", { target });
		const victim = join(target, "src/victim.bin");
		const before = await stat(victim, { bigint: true });
		// What ransomware that keeps a file's look does: bytes deep inside changed, the times put back.
		const bytes = await readFile(victim);
		bytes[2 * 1024 * 1024 + 17] ^= 0xff;
		await writeFile(victim, bytes);
		await utimes(victim, mtime, mtime);
		const after = await stat(victim, { bigint: true });
		expect([after.size, after.mode, after.mtimeNs]).toEqual([before.size, before.mode, before.mtimeNs]);

		const kept = await harness.engine.restore("latest", { target });
		expect(kept.summary.skippedExisting).toEqual(["src/victim.bin"]);
		expect(kept.summary.unchanged).toBe(1);
		expect(kept.summary.partial).toBe(true);
		expect((await readFile(victim)).equals(bytes)).toBe(true);

		const replaced = await harness.engine.restore("latest", { target, overwrite: true });
		expect(replaced.summary.skippedExisting).toEqual([]);
		expect(replaced.summary.bytes).toBe(3 * 1024 * 1024);
		expect((await readFile(victim)).equals(pseudoRandom(3 * 1024 * 1024, 7))).toBe(true);
	});

	it("--overwrite writes only what differs: an identical file stays, one that differs only in mode and time gets them back", async () => {
		harness = await backedUp({ "same.txt": "same\n", "touched.txt": "touched\n", "edited.txt": "edited\n", "longer.txt": "l\n" });
		const target = join(harness.dir, "out");
		await harness.engine.restore("latest", { target });
		const at = (name: string) => join(target, "src", name);
		const snapshotLook = await stat(at("touched.txt"));
		await chmod(at("touched.txt"), 0o600);
		await utimes(at("touched.txt"), new Date("2001-01-01T00:00:00Z"), new Date("2001-01-01T00:00:00Z"));
		await writeFile(at("edited.txt"), "EDITED\n");
		await writeFile(at("longer.txt"), "longer now\n");
		const inodes = async () =>
			Object.fromEntries(
				await Promise.all(["same.txt", "touched.txt", "edited.txt", "longer.txt"].map(async (n) => [n, (await stat(at(n))).ino])),
			);
		const before = await inodes();
		const seen: string[] = [];

		const { summary } = await harness.engine.restore("latest", { target, overwrite: true, onFile: (path) => seen.push(path) });
		expect(summary.unchanged).toBe(2);
		expect(summary.files).toBe(4);
		expect(summary.bytes).toBe("edited\n".length + "l\n".length);
		expect(seen.sort()).toEqual(["src/edited.txt", "src/longer.txt", "src/same.txt", "src/touched.txt"]);
		const after = await inodes();
		expect(after["same.txt"]).toBe(before["same.txt"]);
		expect(after["touched.txt"]).toBe(before["touched.txt"]);
		expect(after["edited.txt"]).not.toBe(before["edited.txt"]);
		expect(await readFile(at("edited.txt"), "utf8")).toBe("edited\n");
		expect(await readFile(at("longer.txt"), "utf8")).toBe("l\n");
		const touched = await stat(at("touched.txt"));
		expect(touched.mode & 0o7777).toBe(snapshotLook.mode & 0o7777);
		expect(touched.mtimeMs).toBe(snapshotLook.mtimeMs);
	});

	it("counts every file of the snapshot in its progress: kept, passed over in a folder it cannot make, and linked", async () => {
		harness = await backedUp({
			"kept.txt": "snapshot\n",
			"docs/a.txt": "aaaa\n",
			"docs/deep/b.txt": "bbbbbbbb\n",
			"plain.txt": "p\n",
			"report.txt": "report\n",
		});
		await link(join(harness.dir, "src/plain.txt"), join(harness.dir, "src/second-name.txt"));
		harness.clock.advance(60_000);
		await harness.engine.backup();
		const target = join(harness.dir, "out");
		await mkdir(join(target, "src"), { recursive: true });
		await writeFile(join(target, "src/kept.txt"), "the user's own\n");
		// A file where the snapshot has a folder: the folder and all inside it cannot be restored.
		await writeFile(join(target, "src/docs"), "in the way\n");
		// And a folder where the snapshot has a file.
		await mkdir(join(target, "src/report.txt"));
		const seen: [string, number][] = [];

		const { summary } = await harness.engine.restore("latest", { target, onFile: (path, bytes) => seen.push([path, bytes]) });
		expect(summary.skippedExisting).toEqual(["src/kept.txt"]);
		expect(summary.conflicts).toEqual(["src/docs", "src/report.txt"]);
		expect(summary.hardLinks).toBe(1);
		expect(seen.sort()).toEqual([
			["src/docs/a.txt", 5],
			["src/docs/deep/b.txt", 9],
			["src/kept.txt", 9],
			["src/plain.txt", 2],
			["src/report.txt", 7],
			["src/second-name.txt", 2],
		]);
		expect(await readFile(join(target, "src/kept.txt"), "utf8")).toBe("the user's own\n");
		expect(await readFile(join(target, "src/docs"), "utf8")).toBe("in the way\n");
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

describe("holdfast restore, spawned", () => {
	let dir: string;
	let expected: Awaited<ReturnType<typeof describeTree>>;
	beforeAll(async () => {
		dir = await tempDir("holdfast-restore-cli-");
		for (let i = 0; i < 6; i++) {
			await mkdir(join(dir, `data/d${i % 2}`), { recursive: true });
			await writeFile(join(dir, `data/d${i % 2}/big-${i}.bin`), pseudoRandom(6_000_000 + i * 1000, 200 + i));
			await writeFile(join(dir, `data/d${i % 2}/small-${i}.txt`), `small file ${i}\n`);
		}
		await writeFile(
			join(dir, "holdfast.yaml"),
			`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-retention-planner"]
sets:
  main:
    sources: [{ type: fs, path: ./data }]
    destination: { type: fs, path: ./repo }
    retention: { days: 30 }
`,
		);
		// Made in this process: the restores under test are the commands.
		await projectEngine(dir)((engine) => engine.init());
		await projectEngine(dir)((engine) => engine.backup());
		expected = await describeTree(join(dir, "data"));
	});
	afterAll(async () => {
		await rm(dir, { recursive: true, force: true });
	});

	it("exits 3 and lists files kept because they differ; --skip-existing exits 0; --overwrite replaces", async () => {
		const target = join(dir, "again");
		const first = holdfast(dir, ["restore", "latest", "--target", target]);
		expect(first.code).toBe(0);
		expect(first.stdout).not.toContain("already in place");
		await writeFile(join(target, "data/d1/small-3.txt"), "edited\n");

		const kept = holdfast(dir, ["restore", "latest", "--target", target]);
		expect(kept.code, kept.stderr).toBe(3);
		expect(kept.stdout).toContain("1 file exists in the target and differs from the snapshot; kept");
		expect(kept.stdout).toContain("\n  data/d1/small-3.txt\n");
		// Everything else was there already: the summary says so rather than only "wrote 0 B".
		expect(kept.stdout).toMatch(/: 11 files, \d+ folders?, 0 links \(11 already in place\); wrote 0 B\n/);
		const json = JSON.parse(holdfast(dir, ["restore", "latest", "--target", target, "--json"]).stdout);
		expect(json).toMatchObject({ skippedExisting: ["data/d1/small-3.txt"], conflicts: [], partial: true, unchanged: 11 });

		expect(holdfast(dir, ["restore", "latest", "--target", target, "--skip-existing"]).code).toBe(0);
		expect(await readFile(join(target, "data/d1/small-3.txt"), "utf8")).toBe("edited\n");
		expect(holdfast(dir, ["restore", "latest", "--target", target, "--skip-existing", "--overwrite"]).code).toBe(2);

		expect(holdfast(dir, ["restore", "latest", "--target", target, "--overwrite"]).code).toBe(0);
		expect(await describeTree(join(target, "data"))).toEqual(expected);
	});

	it("a restore killed with SIGKILL leaves whole files or none, and a rerun completes it", async () => {
		const target = join(dir, "killed");
		const child = startHoldfast(dir, ["restore", "latest", "--target", target, "--no-progress"]);
		const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
		let running = true;
		void exited.then(() => (running = false));
		// Killed the moment a large file is being written: that is when a half file could be left.
		while (running && (await listTree(target)).every((p) => !p.includes("big-"))) await sleep(2);
		child.kill("SIGKILL");
		expect(await exited, "the restore was still running when killed").toBe("SIGKILL");

		for (const path of await listTree(target)) {
			if (path.includes(".holdfast-tmp-") || !path.endsWith(".bin")) continue;
			const rel = path.slice(target.length + "/data/".length);
			expect((await readFile(path)).equals(await readFile(join(dir, "data", rel))), `${rel} is whole`).toBe(true);
		}
		// The restore's own Node (restores run in one started with tuned memory settings) ends within a
		// second of its launcher: until then it still writes, and a second restore is refused.
		let rerun = holdfast(dir, ["restore", "latest", "--target", target]);
		for (let waited = 0; rerun.stderr.includes("another restore is writing into it") && waited < 10_000; waited += 250) {
			await sleep(250);
			rerun = holdfast(dir, ["restore", "latest", "--target", target]);
		}
		expect(rerun.code, rerun.stdout + rerun.stderr).toBe(0);
		expect(await describeTree(join(target, "data"))).toEqual(expected);
		expect((await listTree(target)).filter((p) => p.includes(".holdfast-tmp-"))).toEqual([]);
	});

	it("a write error names the file, leaves no temporary file, exits 1; a rerun completes", async () => {
		const target = join(dir, "limited");
		// A file size limit makes writes past 4 MiB fail (EFBIG) while the small files fit.
		const limited = spawnSync(
			"bash",
			["-c", 'ulimit -f 4096; exec "$@"', "bash", process.execPath, HOLDFAST_BIN, "restore", "latest", "--target", target],
			{ cwd: dir, encoding: "utf8", env: { ...process.env, HOLDFAST_PASSWORD: "correct horse" } },
		);
		expect(limited.status, limited.stderr).toBe(1);
		expect(limited.stderr.trim()).toMatch(/^holdfast: main: restore: .*\/limited\/data\/d[01]\/big-\d\.bin: file too large$/);
		expect((await listTree(target)).filter((p) => p.includes(".holdfast-tmp-"))).toEqual([]);

		const rerun = holdfast(dir, ["restore", "latest", "--target", target]);
		expect(rerun.code, rerun.stderr).toBe(0);
		expect(await describeTree(join(target, "data"))).toEqual(expected);
	});

	it("a full disk names the file and leaves no temporary file; after space is freed a rerun completes", async (context) => {
		const mountPoint = join(dir, "small-disk");
		await mkdir(mountPoint);
		// Needs a tmpfs mount (root with CAP_SYS_ADMIN, as on the project's machines and CI).
		const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", mountPoint]);
		if (mounted.status !== 0) context.skip(`cannot mount a small tmpfs: ${mounted.stderr}`);
		try {
			const target = join(mountPoint, "full");
			const full = holdfast(dir, ["restore", "latest", "--target", target]);
			expect(full.code, full.stderr).toBe(1);
			expect(full.stderr.trim()).toMatch(/^holdfast: main: restore: .*\/full\/data\/d[01]\/[^/]+: no space left on device$/);
			expect((await listTree(target)).filter((p) => p.includes(".holdfast-tmp-"))).toEqual([]);

			expect(spawnSync("mount", ["-o", "remount,size=128m", mountPoint]).status).toBe(0);
			const rerun = holdfast(dir, ["restore", "latest", "--target", target]);
			expect(rerun.code, rerun.stderr).toBe(0);
			expect(await describeTree(join(target, "data"))).toEqual(expected);
		} finally {
			spawnSync("umount", [mountPoint]);
		}
	});
});

async function listTree(root: string): Promise<string[]> {
	const out: string[] = [];
	const walk = async (dir: string) => {
		let entries: Dirent[];
		try {
			entries = await readdir(dir, { withFileTypes: true });
		} catch {
			return;
		}
		for (const entry of entries) {
			const path = join(dir, entry.name);
			out.push(path);
			if (entry.isDirectory()) await walk(path);
		}
	};
	await walk(root);
	return out;
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

describe("one restore at a time into a target", () => {
	it("a restore running into the target refuses a second; a killed one's mark is taken over; none is left behind", async () => {
		harness = await backedUp({ "a.txt": "a\n", "sub/b.txt": "b\n" });
		const target = join(harness.dir, "out");
		await mkdir(target);
		const lock = join(target, ".holdfast-restore.lock");
		// This test's own process stands for a restore still writing.
		await writeFile(lock, `${process.pid}\n${hostname()}\n`);
		const refused = await harness.engine.restore("latest", { target }).catch((error: unknown) => error);
		expect((refused as Error).message).toBe(
			`restore: ${target}: another restore is writing into it (process ${process.pid}); wait for it to end or restore elsewhere`,
		);
		expect(await readdir(target)).toEqual([".holdfast-restore.lock"]);
		// Another machine's mark (a shared folder) is not judged from here.
		await writeFile(lock, "4242\nelsewhere\n");
		const remote = await harness.engine.restore("latest", { target }).catch((error: unknown) => error);
		expect((remote as Error).message).toMatch(
			/process 4242 on elsewhere\); .*or remove .*\.holdfast-restore\.lock if none runs there$/,
		);
		// A process that is gone: its mark is taken over.
		const gone = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
		await writeFile(lock, `${gone.stdout}\n${hostname()}\n`);
		const { summary } = await harness.engine.restore("latest", { target });
		expect(summary.files).toBe(2);
		expect((await readdir(target)).sort()).toEqual(["src"]);
	});
});
