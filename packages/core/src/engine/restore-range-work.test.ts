import { closeSync, openSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { blobId, encodeBlob } from "../repository/blob-codec.js";
import { BlobWork, type WorkerKeys } from "../repository/blob-work.js";
import { targetError } from "./restore-errors.js";
import { failureError, type RestoreRangeRequest, restoreRange, type SpanWrite, type WholeFile } from "./restore-range-work.js";

const keys: WorkerKeys = {
	encryption: Buffer.alloc(32, 1),
	blobMac: Buffer.alloc(32, 2),
	chunkerSeed: Buffer.from("restore range"),
	chunker: { min: 16 * 1024, avg: 64 * 1024, max: 256 * 1024 },
};
const work = new BlobWork(keys);

let dir: string;
beforeEach(async () => {
	dir = await mkdtemp(join(tmpdir(), "holdfast-restore-range-"));
});
afterEach(async () => {
	await rm(dir, { recursive: true, force: true });
});

/** A read range as a pack holds it: the blobs sealed one after another, 7 bytes apart. */
function range(plain: Buffer[], files: WholeFile[], spans: SpanWrite[] = []): RestoreRangeRequest {
	const sealed = plain.map((data) => encodeBlob(keys, data, true));
	const regions = new Uint32Array(sealed.length * 2);
	let at = 0;
	sealed.forEach((s, i) => {
		regions[i * 2] = at;
		regions[i * 2 + 1] = s.length;
		at += s.length + 7;
	});
	const data = Buffer.alloc(at);
	sealed.forEach((s, i) => {
		data.set(s, regions[i * 2] as number);
	});
	return {
		data,
		regions,
		ids: plain.map((p) => blobId(keys, p)),
		rawLengths: Uint32Array.from(plain, (p) => p.length),
		packKey: "data/ab/abcd",
		files: { files, spans, chown: false },
	};
}

function file(name: string, writes: number[], size: number, mode = 0o640, folder = dir): WholeFile {
	const path = Buffer.from(join(folder, name));
	return {
		path,
		nameAt: path.length - Buffer.byteLength(name),
		removeFirst: false,
		size,
		meta: { uid: 0, gid: 0, mode, mtime: "1600000000123456789" },
		writes,
	};
}

describe("restoreRange", () => {
	it("writes each file of the range whole, with its mode and mtime, and each span at its offsets in an open file", async () => {
		const a = Buffer.alloc(3000, 1);
		const b = Buffer.from("the second blob");
		const zeros = Buffer.alloc(8192);
		// A file spanning ranges: this range holds its middle part and nothing at its start.
		const spanning = openSync(join(dir, "spanning"), "w");
		let result: ReturnType<typeof restoreRange>["result"];
		try {
			({ result } = restoreRange(
				work,
				range(
					[a, b, zeros],
					[
						file("ab", [0, 0, 1, 3000], 3000 + b.length),
						file("ba", [1, 0, 0, b.length], 3000 + b.length, 0o400),
						file("z", [0, 0, 2, 3000], 11192),
					],
					[{ fd: spanning, writes: [1, 100, 2, 4096] }],
				),
			));
		} finally {
			closeSync(spanning);
		}
		expect(result.written).toBe(3);
		expect(result.failure).toBeUndefined();
		expect(result.spanFailure).toBeUndefined();
		// The zero blob, block-aligned, is a hole: the last byte written is the second blob's.
		expect(result.spanEnds).toEqual([100 + b.length]);
		expect(await readFile(join(dir, "spanning"))).toEqual(Buffer.concat([Buffer.alloc(100), b]));
		expect(await readFile(join(dir, "ab"))).toEqual(Buffer.concat([a, b]));
		expect(await readFile(join(dir, "ba"))).toEqual(Buffer.concat([b, a]));
		// A trailing run of zeros is a hole that still gives the file its size.
		expect(await readFile(join(dir, "z"))).toEqual(Buffer.concat([a, zeros]));
		const info = await stat(join(dir, "ba"), { bigint: true });
		expect(Number(info.mode & 0o7777n)).toBe(0o400);
		expect(info.mtimeNs / 1000n).toBe(1600000000123456n);
		expect((await readdir(dir)).sort()).toEqual(["ab", "ba", "spanning", "z"]);
	});

	it("names the span whose write failed, with the system's reason, and writes none after it", async () => {
		const data = Buffer.from("content");
		const readOnly = openSync(join(dir, "read-only"), "w+");
		closeSync(readOnly);
		const reading = openSync(join(dir, "read-only"), "r");
		const after = openSync(join(dir, "after"), "w");
		try {
			const { result } = restoreRange(
				work,
				range(
					[data],
					[],
					[
						{ fd: reading, writes: [0, 0] },
						{ fd: after, writes: [0, 0] },
					],
				),
			);
			expect(result.spanEnds).toEqual([]);
			expect(result.spanFailure?.index).toBe(0);
			expect(result.spanFailure?.code).toBe("EBADF");
		} finally {
			closeSync(reading);
			closeSync(after);
		}
		expect((await readFile(join(dir, "after"))).length).toBe(0);
	});

	it("stops at the file that fails, removes its temporary file, begins none after it, and keeps the system's reason", async () => {
		const data = Buffer.from("content");
		await writeFile(join(dir, "blocker"), "a file where a folder should be");
		const { result } = restoreRange(
			work,
			range(
				[data],
				[
					file("first", [0, 0], data.length),
					file("second", [0, 0], data.length, 0o644, join(dir, "blocker")),
					file("third", [0, 0], data.length),
				],
			),
		);
		expect(result.written).toBe(1);
		expect(result.failure).toMatchObject({ index: 1, code: "ENOTDIR" });
		expect((await readdir(dir)).sort()).toEqual(["blocker", "first"]);
		const error = targetError("/r/blocker/second", failureError(result.failure as NonNullable<typeof result.failure>));
		expect(error.message).toBe("restore: /r/blocker/second: not a directory");
	});

	it("a blob longer than the index says fails the range before any file is touched", () => {
		const request = range([Buffer.from("twelve bytes")], [file("never", [0, 0], 12)]);
		const wrong = { ...request, rawLengths: Uint32Array.of(11) };
		expect(() => restoreRange(work, wrong)).toThrow(/^blob [0-9a-f]{16} in data\/ab\/abcd: 12 bytes where the index says 11$/);
		return expect(readdir(dir)).resolves.toEqual([]);
	});

	it("a blob that does not verify fails the range before any file is touched", async () => {
		const request = range([Buffer.from("tampered")], [file("never", [0, 0], 8)]);
		request.data[(request.regions[0] as number) + 20] ^= 1;
		expect(() => restoreRange(work, request)).toThrow();
		expect(await readdir(dir)).toEqual([]);
	});

	it("sparing damage, leaves out the files and spans that need a blob that does not verify, and writes the rest", async () => {
		const blobs = [Buffer.from("first file"), Buffer.from("damaged blob"), Buffer.from("third file")];
		const spanFile = join(dir, "spanning.tmp");
		const fd = openSync(spanFile, "w");
		try {
			const request = range(
				blobs,
				[file("first", [0, 0], 10), file("second", [1, 0], 12), file("both", [0, 0, 2, 10], 20)],
				[
					{ fd, writes: [1, 0] },
					{ fd, writes: [2, 100] },
				],
			);
			// The second blob (its region starts at regions[2]) damaged.
			request.data[(request.regions[2] as number) + 20] ^= 1;
			// Without sparing, the range fails before any file is touched.
			expect(() => restoreRange(work, request)).toThrow(/authentication failed/);
			expect(await readdir(dir)).toEqual(["spanning.tmp"]);
			const { result } = restoreRange(work, { ...request, spareDamaged: true });
			expect(result.damaged).toEqual([
				{ index: 1, message: expect.stringMatching(/^blob [0-9a-f]{16} in data\/ab\/abcd: authentication failed/) },
			]);
			expect(result.written).toBe(3);
			expect(result.failure).toBeUndefined();
			expect((await readdir(dir)).sort()).toEqual(["both", "first", "spanning.tmp"]);
			expect(await readFile(join(dir, "both"), "utf8")).toBe("first filethird file");
			// The span that needs the damaged blob is not written; the other is.
			expect(result.spanEnds).toEqual([0, 110]);
			expect((await readFile(spanFile)).subarray(100).toString()).toBe("third file");
		} finally {
			closeSync(fd);
		}
	});

	it("sparing damage, still fails a range of which no blob verifies: it is not the pack's data", async () => {
		const request = range([Buffer.from("one"), Buffer.from("two")], [file("one", [0, 0], 3), file("two", [1, 0], 3)]);
		request.data[(request.regions[0] as number) + 20] ^= 1;
		request.data[(request.regions[2] as number) + 20] ^= 1;
		expect(() => restoreRange(work, { ...request, spareDamaged: true })).toThrow(/authentication failed/);
		expect(await readdir(dir)).toEqual([]);
	});
});
