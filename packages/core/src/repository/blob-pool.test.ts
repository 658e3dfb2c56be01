import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { getPriority } from "node:os";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { WORKER_NICENESS } from "../host/thread-priority.js";
import { BLOB_OVERHEAD } from "./blob-codec.js";
import { BlobPool, sharedCopy } from "./blob-pool.js";
import { BlobWork, type WorkerKeys } from "./blob-work.js";
import { RepositoryKeys } from "./crypto.js";
import { CHUNKER_DEFAULTS } from "./format.js";

/** The worker as `tsc -b` builds it; the CLI tests need the same build. */
const BUILT = fileURLToPath(new URL("../../dist/repository/seal-worker.js", import.meta.url));
const repoKeys = RepositoryKeys.fromMaster(RepositoryKeys.generateMaster());
const keys: WorkerKeys = { ...repoKeys.raw, chunkerSeed: repoKeys.chunkerSeed, chunker: CHUNKER_DEFAULTS };
const inline = new BlobWork(keys);

let open: BlobPool | undefined;
afterEach(async () => {
	await open?.close();
	open = undefined;
});

describe.skipIf(!existsSync(BUILT))("BlobPool on worker threads", () => {
	it("starts no worker before work and one for a small command's few requests", async () => {
		const pool = new BlobPool(keys, 2, undefined, BUILT);
		open = pool;
		expect(pool.running).toBe(0);
		const data = randomBytes(300_000);
		const both = new Uint32Array([0, 1000, 1000, 299_000]);
		// Two small requests at once, as a small backup's pack digests are: still one thread.
		const [ids, digest] = await Promise.all([pool.hash(data, both), pool.digest(sharedCopy(data))]);
		expect(ids).toEqual(inline.hash(data, both));
		expect(digest).toBe(inline.digest(data));
		expect(pool.running).toBe(1);
	});

	it("starts the second worker once the first holds queued work, and every answer is the inline one", async () => {
		const pool = new BlobPool(keys, 2, undefined, BUILT);
		open = pool;
		const pieces = Array.from({ length: 6 }, () => randomBytes(1024 * 1024));
		const cuts = await Promise.all(pieces.map((piece) => pool.chunk(piece, true)));
		expect(pool.running).toBe(2);
		expect(cuts).toEqual(pieces.map((piece) => inline.chunk(piece, true)));
	});

	it("seals past its young and full collections (over 32 MiB) into blobs that open to the bytes given", async () => {
		const pool = new BlobPool(keys, 1, undefined, BUILT);
		open = pool;
		const piece = 3 * 1024 * 1024;
		const regions = new Uint32Array([0, piece / 3, piece / 3, piece / 3, (2 * piece) / 3, piece / 3]);
		const out = Buffer.from(new SharedArrayBuffer(piece + 3 * BLOB_OVERHEAD));
		for (let round = 0; round < 12; round++) {
			const data = sharedCopy(randomBytes(piece));
			const lengths = await pool.sealInto(data, regions, true, out, 0);
			const ids = inline.hash(data, regions);
			let at = 0;
			for (let i = 0; i < ids.length; i++) {
				const length = lengths[i] as number;
				const opened = await pool.decode(out.subarray(at, at + length), ids[i] as string, "blob");
				const start = regions[2 * i] as number;
				expect(Buffer.from(opened).equals(data.subarray(start, start + piece / 3))).toBe(true);
				at += length;
			}
		}
	});

	it.runIf(process.platform === "linux")(
		"runs its workers below this thread's priority, and leaves this thread's alone",
		async () => {
			// Each thread's nice value, the 19th field of its stat (after the parenthesised name).
			const niceOfThreads = () =>
				readdirSync("/proc/self/task").map((tid) => {
					const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
					return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]);
				});
			const own = getPriority(0);
			const lowered = Math.min(19, own + WORKER_NICENESS);
			const before = niceOfThreads().filter((nice) => nice === lowered).length;
			const pool = new BlobPool(keys, 2, undefined, BUILT);
			open = pool;
			await Promise.all(Array.from({ length: 6 }, () => pool.chunk(randomBytes(1024 * 1024), true)));
			expect(pool.running).toBe(2);
			expect(niceOfThreads().filter((nice) => nice === lowered).length - before).toBe(2);
			expect(getPriority(0)).toBe(own);
		},
	);

	it("never starts more workers than its size", async () => {
		const pool = new BlobPool(keys, 1, undefined, BUILT);
		open = pool;
		const pieces = Array.from({ length: 6 }, () => randomBytes(1024 * 1024));
		await Promise.all(pieces.map((piece) => pool.chunk(piece, true)));
		expect(pool.running).toBe(1);
	});
});

describe("BlobPool without its compiled worker", () => {
	it("runs the work inline and starts no thread", async () => {
		const pool = new BlobPool(keys, 2, undefined, "/nonexistent/seal-worker.js");
		open = pool;
		const data = randomBytes(10_000);
		expect(await pool.digest(data)).toBe(inline.digest(data));
		expect(pool.running).toBe(0);
	});
});
