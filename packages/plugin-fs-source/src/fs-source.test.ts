import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SourceEntry, SourceWarning } from "@holdfast/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FsSource, type FsSourceOptions } from "./fs-source.js";

let dir: string;
beforeEach(async () => {
	dir = await mkdtemp(join(tmpdir(), "holdfast-fssrc-"));
});
afterEach(async () => {
	await chmod(dir, 0o755).catch(() => undefined);
	await rm(dir, { recursive: true, force: true });
});

async function scan(options: Partial<FsSourceOptions> = {}) {
	const source = new FsSource({ path: dir, ...options });
	const entries: SourceEntry[] = [];
	const warnings: SourceWarning[] = [];
	for await (const entry of source.scan({ signal: new AbortController().signal, onSkip: (w) => warnings.push(w) }))
		entries.push(entry);
	return { entries, warnings, paths: entries.map((e) => e.relPath.toString()) };
}

describe("fs source", () => {
	it("walks depth-first, sorted by name bytes, root first", async () => {
		await mkdir(join(dir, "b/inner"), { recursive: true });
		await writeFile(join(dir, "a.txt"), "a");
		await writeFile(join(dir, "b/inner/z"), "z");
		await writeFile(join(dir, "b/c"), "c");
		await writeFile(join(dir, "B"), "upper");
		const { paths, entries } = await scan();
		expect(paths).toEqual(["", "B", "a.txt", "b", "b/c", "b/inner", "b/inner/z"]);
		expect(entries[0]?.type).toBe("dir");
		expect(entries.find((e) => e.relPath.toString() === "a.txt")?.size).toBe(1);
	});

	it("excludes by gitignore patterns and by size", async () => {
		await mkdir(join(dir, "build/sub"), { recursive: true });
		await mkdir(join(dir, "keep"), { recursive: true });
		await writeFile(join(dir, "build/sub/out.o"), "x");
		await writeFile(join(dir, "keep/a.tmp"), "x");
		await writeFile(join(dir, "keep/a.txt"), "x");
		await writeFile(join(dir, "keep/big.txt"), Buffer.alloc(2000));
		const { paths } = await scan({ exclude: ["build/", "*.tmp"], excludeLargerThan: 1000 });
		expect(paths).toEqual(["", "keep", "keep/a.txt"]);
	});

	it("skips the contents of a folder tagged CACHEDIR.TAG, keeping the tag", async () => {
		await mkdir(join(dir, "cache"), { recursive: true });
		await writeFile(join(dir, "cache/CACHEDIR.TAG"), "Signature: 8a477f597d28d172789f06886806bc55\n# a cache\n");
		await writeFile(join(dir, "cache/blob"), "cached");
		await mkdir(join(dir, "fake"), { recursive: true });
		await writeFile(join(dir, "fake/CACHEDIR.TAG"), "not the signature");
		await writeFile(join(dir, "fake/data"), "kept");
		const { paths } = await scan();
		expect(paths).toEqual(["", "cache", "cache/CACHEDIR.TAG", "fake", "fake/CACHEDIR.TAG", "fake/data"]);
	});

	it("records symlinks by default and survives a loop when following them", async () => {
		await mkdir(join(dir, "d"), { recursive: true });
		await symlink("..", join(dir, "d/up"));
		await writeFile(join(dir, "d/f"), "f");
		const recorded = await scan();
		const link = recorded.entries.find((e) => e.relPath.toString() === "d/up");
		expect(link?.type).toBe("symlink");
		expect(link?.linkTarget?.toString()).toBe("..");
		const followed = await scan({ followSymlinks: true });
		expect(followed.warnings.map((w) => w.reason)).toContain("symlink loop: folder is its own ancestor");
		expect(followed.paths).toContain("d/f");
	});

	it("follows a root that is a link to a folder, and only the root", async () => {
		await mkdir(join(dir, "real/share/docs"), { recursive: true });
		await writeFile(join(dir, "real/share/docs/a"), "a");
		await mkdir(join(dir, "elsewhere"));
		await symlink(join(dir, "elsewhere"), join(dir, "real/share/out"));
		await symlink(join(dir, "real/share"), join(dir, "share"));
		const { entries, paths } = await scan({ path: join(dir, "share") });
		expect(paths).toEqual(["", "docs", "docs/a", "out"]);
		expect(entries[0]?.type).toBe("dir");
		expect(entries.find((e) => e.relPath.toString() === "out")?.type).toBe("symlink");
	});

	it("records a FIFO without ever opening it", async () => {
		execFileSync("mkfifo", [join(dir, "pipe")]);
		const { entries } = await scan();
		const fifo = entries.find((e) => e.relPath.toString() === "pipe");
		expect(fifo?.type).toBe("fifo");
		expect(fifo?.read).toBeUndefined();
	});

	it("reads every chunk of a file into one buffer, reused by the next file: each chunk valid until the next is asked for", async () => {
		const large = Buffer.alloc(9 * 1024 * 1024 + 123);
		for (let i = 0; i < large.length; i += 4096) large.writeUInt32LE(i, i);
		await writeFile(join(dir, "large"), large);
		await writeFile(join(dir, "small"), "tiny");
		await writeFile(join(dir, "small2"), "other");
		const { entries } = await scan();
		const read = async (name: string) => {
			const entry = entries.find((e) => e.relPath.toString() === name) as SourceEntry;
			const copies: Buffer[] = [];
			const memory = new Set<ArrayBufferLike>();
			for await (const chunk of (entry.read as () => AsyncIterable<Uint8Array>)()) {
				copies.push(Buffer.from(chunk));
				memory.add(chunk.buffer);
			}
			return { content: Buffer.concat(copies), chunks: copies.length, memory: [...memory] };
		};
		const first = await read("large");
		expect(first.content.equals(large)).toBe(true);
		expect(first.chunks).toBeGreaterThan(2);
		expect(first.memory).toHaveLength(1);
		const small = await read("small");
		const small2 = await read("small2");
		expect(small.content.toString()).toBe("tiny");
		expect(small2.content.toString()).toBe("other");
		expect(small2.memory).toEqual(small.memory);
		expect((await read("large")).memory).toEqual(first.memory);
	});

	it("reads into the memory offered with next(), after the first chunk, and into its own buffer when none is offered", async () => {
		const large = Buffer.alloc(11 * 1024 * 1024 + 77);
		for (let i = 0; i < large.length; i += 4096) large.writeUInt32LE(i + 1, i);
		await writeFile(join(dir, "offered"), large);
		const { entries } = await scan();
		const entry = entries.find((e) => e.relPath.toString() === "offered") as SourceEntry;
		const stream = (entry.read as () => AsyncIterable<Uint8Array>)()[Symbol.asyncIterator]() as AsyncIterator<
			Uint8Array,
			unknown,
			Uint8Array | undefined
		>;
		const target = Buffer.alloc(large.length + 10);
		let filled = 0;
		let inPlace = 0;
		for (let offer: Uint8Array | undefined; ; ) {
			const next = await stream.next(offer);
			if (next.done) break;
			const chunk = next.value;
			const wasInPlace = offer !== undefined && chunk.buffer === target.buffer && chunk.byteOffset === offer.byteOffset;
			if (wasInPlace) inPlace++;
			else target.set(chunk, filled);
			filled += chunk.length;
			// Every other chunk is left to the source's own buffer.
			offer = wasInPlace ? undefined : target.subarray(filled, filled + 3 * 1024 * 1024);
		}
		expect(filled).toBe(large.length);
		expect(target.subarray(0, filled).equals(large)).toBe(true);
		expect(inPlace).toBeGreaterThan(0);
	});

	it("refuses to read a file swapped for a FIFO after listing, instead of blocking", async () => {
		await writeFile(join(dir, "swap"), "regular");
		const { entries } = await scan();
		const entry = entries.find((e) => e.relPath.toString() === "swap") as SourceEntry;
		await rm(join(dir, "swap"));
		execFileSync("mkfifo", [join(dir, "swap")]);
		const read = async () => {
			for await (const _ of (entry.read as () => AsyncIterable<Uint8Array>)()) void _;
		};
		await expect(read()).rejects.toMatchObject({ code: "ECHANGED" });
	});

	it("lists a file replaced by rename as it is now, and nothing for a folder in its place", async () => {
		await writeFile(join(dir, "doc"), "listed");
		await writeFile(join(dir, "gone"), "listed");
		const { entries } = await scan();
		const doc = entries.find((e) => e.relPath.toString() === "doc") as SourceEntry;
		const gone = entries.find((e) => e.relPath.toString() === "gone") as SourceEntry;
		await writeFile(join(dir, "doc.new"), "saved by rename");
		await rename(join(dir, "doc.new"), join(dir, "doc"));
		await rm(join(dir, "gone"));
		await mkdir(join(dir, "gone"));
		const now = (await doc.relist?.()) as SourceEntry;
		expect(now).toMatchObject({ type: "file", size: "saved by rename".length, relPath: doc.relPath });
		expect(now.inode).not.toBe(doc.inode);
		const chunks: Buffer[] = [];
		for await (const chunk of (now.read as () => AsyncIterable<Uint8Array>)()) chunks.push(Buffer.from(chunk));
		expect(Buffer.concat(chunks).toString()).toBe("saved by rename");
		expect(await gone.relist?.()).toBeUndefined();
	});

	it("reports a file deleted after listing as a read error with its code", async () => {
		await writeFile(join(dir, "gone"), "soon gone");
		const { entries } = await scan();
		await rm(join(dir, "gone"));
		const entry = entries.find((e) => e.relPath.toString() === "gone") as SourceEntry;
		const read = async () => {
			for await (const _ of (entry.read as () => AsyncIterable<Uint8Array>)()) void _;
		};
		await expect(read()).rejects.toMatchObject({ code: "ENOENT" });
	});

	it("notices a file that changed since it was listed", async () => {
		await writeFile(join(dir, "grow"), "1");
		const { entries } = await scan();
		const entry = entries.find((e) => e.relPath.toString() === "grow") as SourceEntry;
		expect(await entry.unchangedSinceScan?.()).toBe(true);
		await writeFile(join(dir, "grow"), "12345");
		expect(await entry.unchangedSinceScan?.()).toBe(false);
		// The next comparison is against what was seen last.
		expect(await entry.unchangedSinceScan?.()).toBe(true);
	});

	it("names each file's path for the engine to read it, following a link only where the source does", async () => {
		await mkdir(join(dir, "sub"));
		await writeFile(join(dir, "sub/small"), "tiny content");
		await symlink(join(dir, "sub/small"), join(dir, "link"));
		const plain = await scan();
		const small = plain.entries.find((e) => e.relPath.toString() === "sub/small") as SourceEntry;
		expect(small.local?.path.toString()).toBe(join(dir, "sub/small"));
		expect(small.local?.followLinks).toBe(false);
		// A link is a link: nothing to read.
		expect(plain.entries.find((e) => e.relPath.toString() === "link")?.local).toBeUndefined();
		const followed = await scan({ followSymlinks: true });
		const link = followed.entries.find((e) => e.relPath.toString() === "link") as SourceEntry;
		expect(link.type).toBe("file");
		expect(link.local).toEqual({ path: Buffer.from(join(dir, "link")), followLinks: true });
		// Nothing changed: the file read, the link's target, is what is checked, not the link.
		expect(await link.unchangedSinceScan?.()).toBe(true);
		await writeFile(join(dir, "sub/small"), "tiny content, longer now");
		expect(await link.unchangedSinceScan?.()).toBe(false);
		// Folders are walked, not read.
		expect(plain.entries.find((e) => e.relPath.toString() === "sub")?.local).toBeUndefined();
	});

	it.skipIf(process.getuid?.() === 0)("skips an unreadable folder with a warning (as a user chmod applies to)", async () => {
		await mkdir(join(dir, "secret"));
		await writeFile(join(dir, "secret/x"), "x");
		await chmod(join(dir, "secret"), 0o000);
		const { warnings, paths } = await scan();
		expect(paths).toContain("secret");
		expect(warnings.some((w) => w.path.endsWith("/secret") && /EACCES/.test(w.reason))).toBe(true);
	});

	it("keeps names that are not UTF-8 as raw bytes", async () => {
		const name = Buffer.from([0x66, 0xff, 0xfe, 0x0a, 0x20]);
		await writeFile(Buffer.concat([Buffer.from(`${dir}/`), name]), "raw");
		const { entries } = await scan();
		expect(entries.map((e) => e.relPath).some((p) => p.equals(name))).toBe(true);
	});

	it("looks up one file as a scan would list it, and nothing where a scan would take no file", async () => {
		await mkdir(join(dir, "vm/cache"), { recursive: true });
		await writeFile(join(dir, "vm/disk.img"), "0123456789");
		await writeFile(join(dir, "vm/huge.img"), "x".repeat(100));
		await writeFile(join(dir, "vm/cache/tmp.img"), "temporary");
		await writeFile(join(dir, "vm/notes.tmp"), "scratch");
		await symlink("disk.img", join(dir, "vm/link.img"));
		const options = { exclude: ["cache/", "*.tmp"], excludeLargerThan: 50 };
		const listed = (await scan(options)).entries.find((e) => e.relPath.toString() === "vm/disk.img");
		const source = new FsSource({ path: dir, ...options });
		const found = await source.lookup(dir, Buffer.from("vm/disk.img"));
		expect(found?.type).toBe("file");
		expect(found && listed && { ...found, read: undefined, unchangedSinceScan: undefined, relist: undefined }).toEqual({
			...listed,
			read: undefined,
			unchangedSinceScan: undefined,
			relist: undefined,
		});
		const chunks: Buffer[] = [];
		for await (const chunk of (found as SourceEntry).read?.() ?? []) chunks.push(Buffer.from(chunk));
		expect(Buffer.concat(chunks).toString()).toBe("0123456789");
		// Excluded by a folder above it, by its own name, by its size; a folder, a link, nothing; another root.
		for (const path of ["vm/cache/tmp.img", "vm/notes.tmp", "vm/huge.img", "vm", "vm/link.img", "vm/gone.img"])
			expect(await source.lookup(dir, Buffer.from(path)), path).toBeUndefined();
		expect(await source.lookup(join(dir, "vm"), Buffer.from("disk.img"))).toBeUndefined();
		expect(await source.lookup(dir, Buffer.alloc(0))).toBeUndefined();
	});
});
