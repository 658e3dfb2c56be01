import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm, symlink, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlobPool } from "../repository/blob-pool.js";
import { BlobWork, type WorkerKeys } from "../repository/blob-work.js";
import { type ContentCheck, holdsContent } from "./restore-existing-content.js";

/** The worker as `tsc -b` builds it. */
const BUILT = fileURLToPath(new URL("../../dist/repository/seal-worker.js", import.meta.url));
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

	it.skipIf(!existsSync(BUILT))("gives the same answers on a worker thread", async () => {
		const pool = new BlobPool(keys, 2, undefined, BUILT);
		try {
			const check = checkOf(path, content);
			const other = join(dir, "other.bin");
			const changed = Buffer.from(content);
			changed[5] = (changed[5] as number) ^ 1;
			await writeFile(other, changed);
			expect(await Promise.all([pool.holdsContent(check), pool.holdsContent({ ...check, path: Buffer.from(other) })])).toEqual([
				true,
				false,
			]);
			expect(pool.running).toBeGreaterThan(0);
		} finally {
			await pool.close();
		}
	});
});
