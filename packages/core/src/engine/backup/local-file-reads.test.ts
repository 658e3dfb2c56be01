import { execFileSync } from "node:child_process";
import { closeSync, constants, openSync, readSync, writeSync } from "node:fs";
import { mkdtemp, rename, rm, stat, symlink, truncate, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CHANGED_SINCE_LISTED, LocalReadsBuilder, READ_FAILED, readLocalFiles } from "./local-file-reads.js";

let dir: string;
beforeEach(async () => {
	dir = await mkdtemp(join(tmpdir(), "holdfast-local-reads-"));
});
afterEach(async () => {
	await rm(dir, { recursive: true, force: true });
});

/** A file as a source lists it: its path and the stat of the listing. */
async function listed(name: string, follow = false) {
	const path = join(dir, name);
	const info = await stat(path, { bigint: true });
	return {
		path: Buffer.from(path),
		follow,
		size: Number(info.size),
		inode: info.ino,
		mtimeNs: info.mtimeNs,
		ctimeNs: info.ctimeNs,
	};
}

/** Reads the listed files back to back into a buffer of 0xee, as a batch places them. */
function readAll(files: Awaited<ReturnType<typeof listed>>[]) {
	const builder = new LocalReadsBuilder();
	const into = Buffer.alloc(64 * 1024, 0xee);
	let offset = 3;
	const offsets: number[] = [];
	for (const file of files) {
		offsets.push(offset);
		builder.add(file.path, file.follow, offset, file.size, file.inode, file.mtimeNs, file.ctimeNs);
		offset += file.size;
	}
	return { into, offsets, ...readLocalFiles(into, builder.build()) };
}

describe("small files read from their paths", () => {
	it("reads each file whole at its place, leaving every other byte alone", async () => {
		await writeFile(join(dir, "a"), "first file");
		await writeFile(join(dir, "b"), "second");
		const { into, offsets, read, failures } = readAll([await listed("a"), await listed("b")]);
		expect([...read]).toEqual([10, 6]);
		expect(failures).toEqual([]);
		expect(into.subarray(offsets[0], (offsets[0] as number) + 16).toString()).toBe("first filesecond");
		expect(into[2]).toBe(0xee);
		expect(into[19]).toBe(0xee);
	});

	it("leaves a file that grew, shrank or was touched since it was listed to the careful reader, and reads the rest", async () => {
		for (const name of ["grows", "shrinks", "touched", "same"]) await writeFile(join(dir, name), "12345");
		const files = [await listed("grows"), await listed("shrinks"), await listed("touched"), await listed("same")];
		await writeFile(join(dir, "grows"), "123456789");
		await truncate(join(dir, "shrinks"), 2);
		await utimes(join(dir, "touched"), new Date(), new Date(Date.now() - 3600_000));
		const { read, failures, into, offsets } = readAll(files);
		expect([...read]).toEqual([CHANGED_SINCE_LISTED, CHANGED_SINCE_LISTED, CHANGED_SINCE_LISTED, 5]);
		expect(failures).toEqual([]);
		expect(into.subarray(offsets[3], (offsets[3] as number) + 5).toString()).toBe("12345");
	});

	it("leaves a file rewritten with its listed mtime put back to the careful reader: its change time tells", async () => {
		await writeFile(join(dir, "reset"), "version A");
		execFileSync("touch", ["-m", "-d", "@1700000000.123456789", join(dir, "reset")]);
		const file = await listed("reset");
		await writeFile(join(dir, "reset"), "version B");
		// The same size, and an mtime that a double in milliseconds cannot tell from the listed one.
		execFileSync("touch", ["-m", "-d", "@1700000000.123456889", join(dir, "reset")]);
		expect((await stat(join(dir, "reset"), { bigint: true })).mtimeNs).not.toBe(file.mtimeNs);
		expect([...readAll([file]).read]).toEqual([CHANGED_SINCE_LISTED]);
	});

	it("reads a file dated before 1970 as unchanged when it is", async () => {
		await writeFile(join(dir, "old"), "old file");
		execFileSync("touch", ["-m", "-d", "@-0.032340948", join(dir, "old")]);
		const { read, into, offsets } = readAll([await listed("old")]);
		expect([...read]).toEqual([8]);
		expect(into.subarray(offsets[0], (offsets[0] as number) + 8).toString()).toBe("old file");
	});

	it("fails a file swapped for a FIFO or another file since it was listed, without waiting on the FIFO", async () => {
		await writeFile(join(dir, "swap"), "regular");
		await writeFile(join(dir, "other"), "regular");
		const files = [await listed("swap"), await listed("other")];
		await rm(join(dir, "swap"));
		execFileSync("mkfifo", [join(dir, "swap")]);
		// The listed file is kept under another name, so the new one cannot reuse its inode.
		await rename(join(dir, "other"), join(dir, "other.old"));
		await writeFile(join(dir, "other"), "regular");
		const { read, failures } = readAll(files);
		expect([...read]).toEqual([READ_FAILED, READ_FAILED]);
		expect(failures.map((f) => [f.index, f.code])).toEqual([
			[0, "ECHANGED"],
			[1, "ECHANGED"],
		]);
	});

	it("takes no byte from a FIFO swapped in for a file: its reader still gets all of them", async () => {
		await writeFile(join(dir, "pipe"), "regular");
		const file = await listed("pipe");
		await rm(join(dir, "pipe"));
		execFileSync("mkfifo", [join(dir, "pipe")]);
		// Held open for reading and writing: the pipe keeps what is written until it is read.
		const held = openSync(join(dir, "pipe"), constants.O_RDWR | constants.O_NONBLOCK);
		try {
			writeSync(held, "payload");
			const { read, failures } = readAll([file]);
			expect([...read]).toEqual([READ_FAILED]);
			expect(failures[0]?.code).toBe("ECHANGED");
			const left = Buffer.alloc(64);
			expect(left.subarray(0, readSync(held, left)).toString()).toBe("payload");
		} finally {
			closeSync(held);
		}
	});

	it("fails a vanished file and a link put in a file's place, and follows a link only where asked", async () => {
		await writeFile(join(dir, "gone"), "soon gone");
		await writeFile(join(dir, "target"), "target");
		await writeFile(join(dir, "swapped"), "target");
		const gone = await listed("gone");
		const swapped = await listed("swapped");
		await rm(join(dir, "gone"));
		await rm(join(dir, "swapped"));
		await symlink(join(dir, "target"), join(dir, "swapped"));
		await symlink(join(dir, "target"), join(dir, "link"));
		const followed = await listed("link", true);
		const { read, failures, into, offsets } = readAll([gone, swapped, followed]);
		expect([...read]).toEqual([READ_FAILED, READ_FAILED, 6]);
		expect(failures.map((f) => f.code)).toEqual(["ENOENT", "ELOOP"]);
		expect(failures[0]?.message).toContain(join(dir, "gone"));
		expect(into.subarray(offsets[2], (offsets[2] as number) + 6).toString()).toBe("target");
	});

	it("keeps paths of any bytes and any number of files, growing its path buffer", async () => {
		const names = Array.from({ length: 300 }, (_, i) => `${"n".repeat(100)}-${i}-\u00e9`);
		for (const name of names) await writeFile(join(dir, name), name.slice(-6));
		const raw = Buffer.concat([Buffer.from(`${dir}/`), Buffer.from([0x66, 0xff, 0x66])]);
		await writeFile(raw, "raw");
		const files = await Promise.all(names.map((name) => listed(name)));
		const info = await stat(raw, { bigint: true });
		files.push({ path: raw, follow: false, size: 3, inode: info.ino, mtimeNs: info.mtimeNs, ctimeNs: info.ctimeNs });
		const { read, failures, into, offsets } = readAll(files);
		expect(failures).toEqual([]);
		expect([...read]).toEqual(files.map((file) => file.size));
		const last = offsets.at(-1) as number;
		expect(into.subarray(last, last + 3).toString()).toBe("raw");
		const at = offsets[299] as number;
		expect(into.subarray(at, at + (files[299]?.size ?? 0)).toString()).toBe(names[299]?.slice(-6));
	});
});
