import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, link, mkdtemp, rm, stat, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobPool } from "../repository/blob-pool.js";
import { BlobWork, type WorkerKeys } from "../repository/blob-work.js";
import { type ContentCheck, holdsContent } from "./restore-existing-content.js";

/** The worker as `tsc -b` builds it, from a build that has this check. */
const BUILT = fileURLToPath(new URL("../../dist/repository/seal-worker.js", import.meta.url));
const BUILT_WITH_CHECK =
	existsSync(BUILT) && existsSync(new URL("../../dist/engine/restore-existing-content.js", import.meta.url));
// Small blobs: an 18 MiB file is several hundred, read in three pieces of at most 8 MiB.
const keys: WorkerKeys = {
	encryption: Buffer.alloc(32, 1),
	blobMac: Buffer.alloc(32, 2),
	chunkerSeed: Buffer.from("existing content"),
	chunker: { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 },
};
const work = new BlobWork(keys);
const SIZE = 18 * 1024 * 1024;

let dir: string;
let content: Buffer;
let path: string;
beforeEach(async () => {
	dir = await mkdtemp(join(tmpdir(), "holdfast-existing-content-"));
	content = randomBytes(SIZE);
	path = join(dir, "file.bin");
	await writeFile(path, content);
});
afterEach(async () => {
	await rm(dir, { recursive: true, force: true });
});

/** What a snapshot records of `bytes`: its blobs as the backup cuts them. */
function checkOf(at: string, bytes: Buffer): ContentCheck {
	const { lengths, ids } = work.chunk(bytes, true);
	return { path: Buffer.from(at), size: bytes.length, lengths: Uint32Array.from(lengths), ids };
}

describe("holdsContent", () => {
	it("says yes for the file itself, and no for a byte changed in its last piece, for a file cut short or grown", async () => {
		const check = checkOf(path, content);
		expect(check.ids.length).toBeGreaterThan(100);
		expect(holdsContent(work, check)).toBe(true);

		const changed = Buffer.from(content);
		changed[SIZE - 1000] = (changed[SIZE - 1000] as number) ^ 1;
		await writeFile(path, changed);
		expect(holdsContent(work, check)).toBe(false);

		await writeFile(path, content);
		await truncate(path, SIZE - 1);
		expect(holdsContent(work, check)).toBe(false);

		await writeFile(path, Buffer.concat([content, Buffer.from([0])]));
		expect(holdsContent(work, check)).toBe(false);
	});

	it("does not follow a link at the path, and a missing file or one the lengths do not fit says no", async () => {
		const check = checkOf(path, content);
		const link = join(dir, "link.bin");
		await symlink(path, link);
		expect(holdsContent(work, { ...check, path: Buffer.from(link) })).toBe(false);
		expect(holdsContent(work, { ...check, path: Buffer.from(join(dir, "gone.bin")) })).toBe(false);
		// Blobs that do not cover the file: the last blob's length one short.
		const lengths = Uint32Array.from(check.lengths);
		lengths[lengths.length - 1] = (lengths[lengths.length - 1] as number) - 1;
		expect(holdsContent(work, { ...check, lengths })).toBe(false);
	});

	it("sets the snapshot's mode and time on the file it found holding the content, and only then", async () => {
		const check = checkOf(path, content);
		const fix = { mode: 0o640, time: 1_600_000_000.5 };
		await chmod(path, 0o600);
		expect(holdsContent(work, { ...check, fix })).toBe(true);
		const fixed = await stat(path);
		expect([fixed.mode & 0o7777, fixed.mtimeMs]).toEqual([0o640, 1_600_000_000_500]);

		const other = join(dir, "other.bin");
		const changed = Buffer.from(content);
		changed[0] = (changed[0] as number) ^ 1;
		await writeFile(other, changed);
		await chmod(other, 0o600);
		expect(holdsContent(work, { ...check, path: Buffer.from(other), fix })).toBe(false);
		expect((await stat(other)).mode & 0o7777).toBe(0o600);

		// Not on a file with another name (it would change there too), nor, for root, on one another owner made.
		await chmod(path, 0o600);
		const elsewhere = join(dir, "elsewhere.bin");
		await link(path, elsewhere);
		expect(holdsContent(work, { ...check, fix })).toBe(false);
		expect((await stat(elsewhere)).mode & 0o7777).toBe(0o600);
		await rm(elsewhere);
		const mine = await stat(path);
		expect(holdsContent(work, { ...check, fix: { ...fix, owner: { uid: mine.uid + 1, gid: mine.gid } } })).toBe(false);
		expect((await stat(path)).mode & 0o7777).toBe(0o600);
		expect(holdsContent(work, { ...check, fix: { ...fix, owner: { uid: mine.uid, gid: mine.gid } } })).toBe(true);
		expect((await stat(path)).mode & 0o7777).toBe(0o640);
	});

	it("cannot tell once the restore stops, and opens a named pipe at the path without waiting for a writer", async () => {
		const check = checkOf(path, content);
		const stop = new Int32Array(new SharedArrayBuffer(4));
		Atomics.store(stop, 0, 1);
		expect(holdsContent(work, { ...check, stop })).toBeUndefined();
		const pipe = join(dir, "pipe");
		execFileSync("mkfifo", [pipe]);
		expect(holdsContent(work, { ...check, path: Buffer.from(pipe) })).toBe(false);
	});

	it.skipIf(!BUILT_WITH_CHECK)("gives the same answers on a worker thread", async () => {
		const pool = new BlobPool(keys, 2, undefined, BUILT);
		try {
			const check = checkOf(path, content);
			const other = join(dir, "other.bin");
			const changed = Buffer.from(content);
			changed[5] = (changed[5] as number) ^ 1;
			await writeFile(other, changed);
			await chmod(path, 0o600);
			const fix = { mode: 0o640, time: 1_600_000_000.5 };
			expect(
				await Promise.all([pool.holdsContent({ ...check, fix }), pool.holdsContent({ ...check, path: Buffer.from(other) })]),
			).toEqual([true, false]);
			expect((await stat(path)).mode & 0o7777).toBe(0o640);
			expect(pool.running).toBeGreaterThan(0);
		} finally {
			await pool.close();
		}
	});
});
