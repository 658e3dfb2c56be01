import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import {
	chmod,
	chown,
	copyFile,
	link,
	lstat,
	mkdir,
	open,
	readdir,
	readFile,
	readlink,
	rename,
	rm,
	symlink,
	utimes,
	writeFile,
} from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness } from "./support/harness.js";
import { pseudoRandom } from "./support/trees.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

const SPARSE_SIZE = 32 * 1024 * 1024;
const isRoot = process.getuid?.() === 0;

const bytes = (...parts: (string | number[])[]) =>
	Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p) : Buffer.from(p))));
const under = (dir: string, ...names: Buffer[]) =>
	Buffer.concat([Buffer.from(dir), ...names.flatMap((n) => [Buffer.from("/"), n])]);

/** Everything lstat says that a restore can carry, keyed by the raw path bytes (latin1 keeps them apart). */
async function describeExactly(root: string) {
	const out: Record<string, Record<string, unknown>> = {};
	const walk = async (dir: Buffer, rel: string) => {
		for (const name of (await readdir(dir, { encoding: "buffer" })).sort(Buffer.compare)) {
			const path = Buffer.concat([dir, Buffer.from("/"), name]);
			const key = `${rel}/${name.toString("latin1")}`;
			const info = await lstat(path, { bigint: true });
			const entry: Record<string, unknown> = {
				mode: info.mode.toString(8),
				uid: info.uid,
				gid: info.gid,
				// The format keeps nanoseconds; Node can set microseconds.
				mtimeUs: info.mtimeNs / 1000n,
			};
			if (info.isSymbolicLink()) entry.target = (await readlink(path, { encoding: "buffer" })).toString("latin1");
			else if (info.isFile()) {
				entry.size = info.size;
				entry.nlink = info.nlink;
				entry.sha = createHash("sha256")
					.update(await readFile(path))
					.digest("hex");
			}
			out[key] = entry;
			if (info.isDirectory()) await walk(path, key);
		}
	};
	await walk(Buffer.from(root), "");
	return out;
}

describe("restore fidelity", () => {
	it("restores names, modes, owners, times, links, holes and hard links as lstat saw them", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		const invalidUtf8 = bytes("bad-", [0xff, 0xfe, 0x80], ".txt");
		const newline = bytes("two\nlines");
		const longName = Buffer.from("n".repeat(255));
		await writeFile(under(src, invalidUtf8), "not UTF-8 in the name\n");
		await writeFile(under(src, newline), "newline in the name\n");
		await writeFile(under(src, longName), "a 255-byte name\n");
		await mkdir(under(src, bytes("dir-", [0xc3, 0x28])));
		await writeFile(under(src, bytes("dir-", [0xc3, 0x28]), Buffer.from("inside")), "");
		await mkdir(join(src, "empty-dir"));
		await writeFile(join(src, "empty.bin"), "");
		await writeFile(join(src, "script.sh"), "#!/bin/sh\n");
		await chmod(join(src, "script.sh"), 0o750);
		await writeFile(join(src, "private"), "secret\n");
		await chmod(join(src, "private"), 0o400);
		await mkdir(join(src, "locked-dir"));
		await writeFile(join(src, "locked-dir/f"), "f\n");
		await chmod(join(src, "locked-dir"), 0o2711);
		await writeFile(join(src, "setuid"), "s\n");
		await chmod(join(src, "setuid"), 0o4755);
		if (isRoot) await chown(join(src, "private"), 1234, 5678);
		await symlink("script.sh", join(src, "relative-link"));
		await symlink("/etc/hostname", join(src, "absolute-link"));
		await symlink("../no/such/thing", join(src, "dangling-link"));

		// A sparse file: 32 MiB apparent, three small islands of data, the rest holes.
		const sparse = await open(join(src, "sparse.img"), "w");
		await sparse.write(pseudoRandom(10_000, 1), 0, 10_000, 0);
		await sparse.write(pseudoRandom(5_000, 2), 0, 5_000, 12 * 1024 * 1024 + 123);
		await sparse.write(Buffer.from("tail"), 0, 4, SPARSE_SIZE - 4);
		await sparse.close();

		await mkdir(join(src, "a"));
		await mkdir(join(src, "b"));
		await writeFile(join(src, "a/first"), pseudoRandom(70_000, 3));
		await link(join(src, "a/first"), join(src, "b/second"));

		// Times with nanoseconds that a float divide rounds one microsecond low.
		await utimes(join(src, "empty-dir"), 1_700_000_000.123456, 1_700_000_000.123456);
		await utimes(join(src, "a"), 1_234_567_890.987654, 1_234_567_890.987654);

		await harness.engine.init();
		await harness.engine.backup();
		const expected = await describeExactly(src);
		expect(expected["/sparse.img"]?.size).toBe(BigInt(SPARSE_SIZE));

		const target = join(harness.dir, "out");
		const { summary } = await harness.engine.restore("latest", { target });
		expect(await describeExactly(join(target, "src"))).toEqual(expected);
		expect(summary.hardLinks).toBe(1);

		const restoredSparse = await lstat(join(target, "src/sparse.img"));
		expect(restoredSparse.size).toBe(SPARSE_SIZE);
		// Allocated space stays near the data (about 20 KB), far below the apparent 32 MiB.
		expect(restoredSparse.blocks * 512).toBeLessThan(SPARSE_SIZE / 32);
		const first = await lstat(join(target, "src/a/first"));
		const second = await lstat(join(target, "src/b/second"));
		expect(second.ino).toBe(first.ino);
		expect(first.nlink).toBe(2);
	});

	it("--overwrite links a further name again to a first name whose content it found in place", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await mkdir(join(src, "a"), { recursive: true });
		await mkdir(join(src, "b"));
		await writeFile(join(src, "a/first"), pseudoRandom(70_000, 3));
		await link(join(src, "a/first"), join(src, "b/second"));
		await harness.engine.init();
		await harness.engine.backup();
		const target = join(harness.dir, "out");
		await harness.engine.restore("latest", { target });
		const first = (await lstat(join(target, "src/a/first"))).ino;
		// The second name became a file of its own, other bytes of the same size.
		await rm(join(target, "src/b/second"));
		await writeFile(join(target, "src/b/second"), pseudoRandom(70_000, 4));

		const { summary } = await harness.engine.restore("latest", { target, overwrite: true });
		expect(summary.unchanged).toBe(1);
		expect(summary.hardLinks).toBe(1);
		expect((await lstat(join(target, "src/a/first"))).ino).toBe(first);
		expect((await lstat(join(target, "src/b/second"))).ino).toBe(first);

		// A copy of the same bytes, mode and time under the second name is not the snapshot's one file either.
		await rm(join(target, "src/b/second"));
		await copyFile(join(target, "src/a/first"), join(target, "src/b/second"));
		const look = await lstat(join(target, "src/a/first"));
		await chmod(join(target, "src/b/second"), look.mode & 0o7777);
		await utimes(join(target, "src/b/second"), look.atime, look.mtime);
		expect((await lstat(join(target, "src/b/second"))).ino).not.toBe(first);
		const again = await harness.engine.restore("latest", { target, overwrite: true });
		expect(again.summary.hardLinks).toBe(1);
		expect((await lstat(join(target, "src/b/second"))).ino).toBe(first);
	});

	it("a restore limited by include patterns still links names of one file that it restores", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		await mkdir(join(src, "keep"), { recursive: true });
		await writeFile(join(src, "keep/one"), "shared content\n");
		await link(join(src, "keep/one"), join(src, "keep/two"));
		await link(join(src, "keep/one"), join(src, "left-out"));
		await harness.engine.init();
		await harness.engine.backup();

		const target = join(harness.dir, "out");
		const { summary } = await harness.engine.restore("latest", { target, include: (p) => p.startsWith("src/keep") });
		expect(summary.files).toBe(2);
		const one = await lstat(join(target, "src/keep/one"));
		expect((await lstat(join(target, "src/keep/two"))).ino).toBe(one.ino);
		expect(one.nlink).toBe(2);
	});

	it("makes named pipes again with their mode and time, also in a folder whose name is not UTF-8", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		const oddDir = under(src, bytes("odd-", [0xff]));
		await mkdir(oddDir, { recursive: true });
		execFileSync("mkfifo", ["-m", "640", join(src, "pipe")]);
		await utimes(join(src, "pipe"), 1_600_000_000, 1_600_000_000);
		// The test's own path is UTF-8: the pipe is made there and moved under the odd name.
		execFileSync("mkfifo", [join(src, "moved")]);
		await rename(join(src, "moved"), under(src, bytes("odd-", [0xff]), Buffer.from("inner")));
		await harness.engine.init();
		await harness.engine.backup();

		const target = join(harness.dir, "out");
		const { summary } = await harness.engine.restore("latest", { target });
		expect(summary.fifos).toBe(2);
		const pipe = await lstat(join(target, "src/pipe"));
		expect(pipe.isFIFO()).toBe(true);
		expect(pipe.mode & 0o7777).toBe(0o640);
		expect(Math.round(pipe.mtimeMs / 1000)).toBe(1_600_000_000);
		expect((await lstat(under(target, Buffer.from("src"), bytes("odd-", [0xff]), Buffer.from("inner")))).isFIFO()).toBe(true);

		const again = await harness.engine.restore("latest", { target });
		expect(again.summary.fifos).toBe(2);
		expect(again.summary.unchanged).toBe(2);
		expect(again.summary.skippedExisting).toEqual([]);
	});

	it("a named pipe that cannot be made is said and skipped; the files around it are restored", async () => {
		harness = await createHarness();
		const src = join(harness.dir, "src");
		execFileSync("mkfifo", [join(src, "pipe")]);
		await writeFile(join(src, "important.txt"), "keep me");
		await harness.engine.init();
		await harness.engine.backup();
		const path = process.env.PATH;
		process.env.PATH = "/nonexistent";
		try {
			const target = join(harness.dir, "out");
			const { summary } = await harness.engine.restore("latest", { target });
			expect(await readFile(join(target, "src/important.txt"), "utf8")).toBe("keep me");
			expect([summary.fifos, summary.special]).toEqual([0, 1]);
			expect(harness.logger.lines.map((l) => l.line)).toContainEqual(
				expect.stringMatching(/src\/pipe: named pipe not recreated: mkfifo is not installed$/),
			);
			expect(await readdir(join(target, "src"))).toEqual(["important.txt"]);
		} finally {
			process.env.PATH = path;
		}
	});
});
