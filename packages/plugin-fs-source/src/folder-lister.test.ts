import { existsSync, lstatSync } from "node:fs";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { SourceEntry, SourceWarning } from "@holdfast/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { entryStat } from "./entry-stat.js";
import { FolderLister } from "./folder-lister.js";
import { FolderReader } from "./folder-reader.js";
import { FsSource, type FsSourceOptions, type WalkTuning } from "./fs-source.js";

/** The worker as tsc builds it (the test command builds first); tests run the sources, which have no .js beside them. */
const SCRIPT = fileURLToPath(new URL("../dist/list-worker.js", import.meta.url));
const NO_LISTER: WalkTuning = { listerScript: join(tmpdir(), "no-such-list-worker.js") };
/** A lister from the root on, on a machine with a core to spare. */
const LISTER: WalkTuning = { listerScript: SCRIPT, listerAfter: 0, awaitLister: true, cores: 2, busyCores: () => 0.5 };

let dir: string;
beforeEach(async () => {
	dir = await mkdtemp(join(tmpdir(), "holdfast-lister-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function scan(options: Partial<FsSourceOptions>, tuning: WalkTuning, leaveOut: string[] = []) {
	const source = new FsSource({ path: dir, ...options }, dir, leaveOut, undefined, tuning);
	const entries: SourceEntry[] = [];
	const warnings: SourceWarning[] = [];
	for await (const entry of source.scan({ signal: new AbortController().signal, onSkip: (w) => warnings.push(w) })) {
		entries.push(entry);
	}
	// What a listing decides, entry by entry; the read functions are the same code either way.
	const seen = entries.map(({ relPath, type, size, mode, mtimeNs, ctimeNs, inode, device, linkTarget }) => ({
		path: relPath.toString(),
		type,
		size,
		mode,
		mtimeNs,
		ctimeNs,
		inode,
		device,
		linkTarget: linkTarget?.toString(),
	}));
	return { seen, warnings, listings: { ...source.listings } };
}

/** Folders in three levels, with what each of the walk's rules passes by. */
async function makeTree(): Promise<void> {
	for (let a = 0; a < 3; a++) {
		for (let b = 0; b < 4; b++) {
			await mkdir(join(dir, `a${a}`, `b${b}`, "c"), { recursive: true });
			await writeFile(join(dir, `a${a}`, `b${b}`, `f${b}.txt`), "x".repeat(a * 10 + b));
			await writeFile(join(dir, `a${a}`, `b${b}`, "c", "deep"), "deep");
		}
	}
	await mkdir(join(dir, "build", "sub"), { recursive: true });
	await writeFile(join(dir, "build", "sub", "out.o"), "o");
	await writeFile(join(dir, "a0", "skip.tmp"), "t");
	await mkdir(join(dir, "cache", "inner"), { recursive: true });
	await writeFile(join(dir, "cache", "CACHEDIR.TAG"), "Signature: 8a477f597d28d172789f06886806bc55\n");
	await writeFile(join(dir, "cache", "inner", "blob"), "b");
	await mkdir(join(dir, "repo", "data"), { recursive: true });
	await writeFile(join(dir, "repo", "data", "pack"), "p");
	await symlink("a1", join(dir, "link-to-a1"));
	await symlink("self", join(dir, "self"));
	await writeFile(join(dir, "big.bin"), Buffer.alloc(5000));
}

describe("fs source, folders listed ahead by the lister", () => {
	it("walks what the walk alone walks, every folder after the root listed by the worker", async () => {
		expect(existsSync(SCRIPT), `${SCRIPT} is built by the test command`).toBe(true);
		await makeTree();
		const options = { exclude: ["build/", "*.tmp"], excludeLargerThan: 4096 };
		const leaveOut = [join(dir, "repo")];
		const alone = await scan(options, NO_LISTER, leaveOut);
		const ahead = await scan(options, LISTER, leaveOut);
		expect(ahead.seen).toEqual(alone.seen);
		expect(ahead.warnings).toEqual(alone.warnings);
		expect(alone.seen.map((e) => e.path)).toContain("a2/b3/c/deep");
		expect(alone.seen.map((e) => e.path)).not.toContain("build/sub");
		expect(alone.seen.map((e) => e.path)).not.toContain("repo/data");
		expect(alone.seen.map((e) => e.path)).not.toContain("cache/inner");
		// 3 a, 12 b, 12 c folders and the cache, all entered after the root.
		const folders = 3 + 12 + 12 + 1;
		expect(alone.listings).toEqual({ here: 1 + folders, ahead: 0 });
		expect(ahead.listings).toEqual({ here: 1, ahead: folders });
	});

	it("follows links as the walk does, stopping at a loop back to a folder it is in, and reports what it cannot stat", async () => {
		await makeTree();
		await symlink("..", join(dir, "a1", "b1", "up"));
		const alone = await scan({ followSymlinks: true, exclude: ["build/"] }, NO_LISTER);
		const ahead = await scan({ followSymlinks: true, exclude: ["build/"] }, LISTER);
		expect(ahead.seen).toEqual(alone.seen);
		expect(ahead.warnings).toEqual(alone.warnings);
		expect(alone.warnings.map((w) => w.reason)).toContain("symlink loop: folder is its own ancestor");
		expect(alone.warnings.some((w) => w.path.endsWith("/self") && w.reason.startsWith("vanished or unreadable: ELOOP"))).toBe(
			true,
		);
		// link-to-a1 followed: a1's folders twice.
		expect(alone.seen.map((e) => e.path)).toContain("link-to-a1/b0/c/deep");
		expect(ahead.listings.here).toBe(1);
		expect(ahead.listings.ahead).toBeGreaterThan(30);
	});
});

describe("fs source, two roots listed ahead", () => {
	it("hands the lister each root's walk in turn", async () => {
		await makeTree();
		const second = await mkdtemp(join(tmpdir(), "holdfast-lister-2-"));
		try {
			for (const name of ["x", "y", "z"]) await mkdir(join(second, name, "deeper"), { recursive: true });
			await writeFile(join(second, "y", "deeper", "f"), "f");
			const alone = await scan({ path: [dir, second] }, NO_LISTER);
			const ahead = await scan({ path: [dir, second] }, LISTER);
			expect(ahead.seen).toEqual(alone.seen);
			expect(alone.seen.map((e) => e.path)).toContain("y/deeper/f");
			expect(ahead.listings).toEqual({ here: 2, ahead: alone.listings.here - 2 });
		} finally {
			await rm(second, { recursive: true, force: true });
		}
	});
});

describe("fs source, the lister only where a core is to spare", () => {
	async function manyFolders(count: number): Promise<void> {
		for (let i = 0; i < count; i++) {
			await mkdir(join(dir, `d${String(i).padStart(3, "0")}`));
			await writeFile(join(dir, `d${String(i).padStart(3, "0")}`, "f"), String(i));
		}
	}

	it("does not start one while the process keeps every core busy", async () => {
		await manyFolders(10);
		const busy = await scan({}, { ...LISTER, busyCores: () => 1.9 });
		expect(busy.listings).toEqual({ here: 11, ahead: 0 });
		const idle = await scan({}, { ...LISTER, busyCores: () => 1.0 });
		expect(idle.listings).toEqual({ here: 1, ahead: 10 });
		expect(busy.seen).toEqual(idle.seen);
	});
});

describe("folder lister", () => {
	it("stops, and says so, when the folder the walk enters is not the one it listed next", async () => {
		await mkdir(join(dir, "a", "inner"), { recursive: true });
		await mkdir(join(dir, "b"), { recursive: true });
		const lister = new FolderLister(new FolderReader({ follow: false, excludeCaches: true, statConcurrency: 4 }), SCRIPT);
		try {
			lister.start();
			await lister.up();
			expect(lister.ready).toBe(true);
			const root = lstatSync(dir, { bigint: true });
			const folder = (name: string) => ({
				rel: new Uint8Array(Buffer.from(name)),
				abs: new Uint8Array(Buffer.from(join(dir, name))),
				info: entryStat(lstatSync(join(dir, name), { bigint: true })),
			});
			lister.handOver({
				rules: { exclude: [], oneFileSystem: false, leftOut: [] },
				rootDevice: root.dev,
				rootIdentity: `${root.dev}:${root.ino}`,
				open: [{ identity: "", folders: [folder("a"), folder("b")] }],
			});
			expect(lister.streaming).toBe(true);
			const a = await lister.take(Buffer.from("a"));
			expect(a?.names.map(String)).toEqual(["inner"]);
			// The worker lists a/inner next; a walk entering b is out of step with it.
			expect(await lister.take(Buffer.from("b"))).toBeUndefined();
			expect(lister.streaming).toBe(false);
			expect(lister.ready).toBe(false);
			expect(lister.taken).toBe(1);
		} finally {
			lister.close();
		}
	});
});
