import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { isHoldfastError } from "../host/errors.js";
import { encodePackedBlobs, packBlobs } from "./blob-table.js";
import { RepositoryKeys } from "./crypto.js";
import { IndexDecoder } from "./index-decoder.js";
import type { IndexFile } from "./index-file.js";
import { sealJson } from "./key-store.js";

/** The worker as `tsc -b` builds it; the CLI tests need the same build. */
const BUILT = fileURLToPath(new URL("../../dist/repository/index-worker.js", import.meta.url));
const keys = RepositoryKeys.fromMaster(RepositoryKeys.generateMaster());
const blobs = (n: number) =>
	Array.from({ length: n }, (_, i): [number, string, number, number, number] => [
		i % 2,
		randomBytes(32).toString("hex"),
		i * 10,
		10,
		7,
	]);
const indexFile: IndexFile = {
	v: 1,
	created: "2026-01-01T00:00:00.000Z",
	packs: [
		{ key: "data/aa/one", size: 100, mode: "compliance", until: "2026-02-01T00:00:00.000Z", blobs: blobs(300) },
		{
			key: "data/bb/two",
			size: 50,
			mode: "compliance",
			until: "2026-02-01T00:00:00.000Z",
			blobs: [...blobs(2), [0, "odd", 1, 2, 3]],
		},
	],
	locks: [{ key: "snapshots/x", mode: "compliance", until: "2026-02-01T00:00:00.000Z" }],
	self: { mode: "compliance", until: "2026-02-01T00:00:00.000Z" },
};
const sealed = sealJson(keys, indexFile);

let open: IndexDecoder | undefined;
afterEach(async () => {
	await open?.close();
	open = undefined;
});

describe.each([
	{ name: "on worker threads", script: BUILT, threaded: true, budget: 0 },
	{ name: "inline (no worker script)", script: "/nonexistent/index-worker.js", threaded: false, budget: 0 },
	{ name: "inline (within the inline budget)", script: BUILT, threaded: false, budget: 1024 * 1024 },
])("IndexDecoder $name", ({ script, threaded, budget }) => {
	it.skipIf(threaded && !existsSync(BUILT))("opens an index object into its head and packed blobs", async () => {
		const decoder = new IndexDecoder(keys.raw.encryption, script, budget);
		open = decoder;
		const { file, packed } = await decoder.decode(sealed, "index/x", "packed");
		expect(decoder.threads > 0).toBe(threaded);
		expect(file.packs.map((p) => [p.key, p.blobCount, p.packed])).toEqual([
			["data/aa/one", 300, undefined],
			["data/bb/two", 3, undefined],
		]);
		expect(file.locks).toEqual(indexFile.locks);
		expect(packed).toEqual(indexFile.packs.map((p) => packBlobs(p.blobs)));
		const head = await decoder.decode(sealed, "index/x", "head");
		expect(head.packed).toBeUndefined();
		expect(head.file).toEqual(file);
		const stored = await decoder.decode(sealed, "index/x", "stored");
		expect(stored.stored).toEqual(encodePackedBlobs(packed ?? []));
		await decoder.close();
		expect(decoder.threads).toBe(0);
	});

	it.skipIf(threaded && !existsSync(BUILT))("calls a damaged index object corrupt, naming it", async () => {
		const decoder = new IndexDecoder(keys.raw.encryption, script, budget);
		open = decoder;
		const damaged = Buffer.from(sealed);
		damaged[40] = (damaged[40] as number) ^ 1;
		const failure = await decoder.decode(damaged, "index/damaged", "head").catch((error: unknown) => error);
		expect(isHoldfastError(failure, "CORRUPT")).toBe(true);
		expect((failure as Error).message).toMatch(/^index\/damaged: /);
		// The thread that reported it still serves the next object.
		expect((await decoder.decode(sealed, "index/x", "head")).file.packs).toHaveLength(2);
	});
});

describe("IndexDecoder's inline budget", () => {
	it.skipIf(!existsSync(BUILT))(
		"opens a load's first objects inline and starts the thread once they pass the budget",
		async () => {
			const decoder = new IndexDecoder(keys.raw.encryption, BUILT, 2 * sealed.length);
			open = decoder;
			const inline = [await decoder.decode(sealed, "index/x", "packed"), await decoder.decode(sealed, "index/x", "packed")];
			expect(decoder.threads).toBe(0);
			const threaded = await decoder.decode(sealed, "index/x", "packed");
			expect(decoder.threads).toBe(1);
			// The same answer either way.
			expect(threaded).toEqual(inline[0]);
			expect(inline[1]).toEqual(inline[0]);
			// A new load (after close) has its budget again.
			await decoder.close();
			await decoder.decode(sealed, "index/x", "head");
			expect(decoder.threads).toBe(0);
		},
	);

	it.skipIf(!existsSync(BUILT))("sends an object larger than the budget to the thread at once", async () => {
		const decoder = new IndexDecoder(keys.raw.encryption, BUILT, sealed.length - 1);
		open = decoder;
		expect((await decoder.decode(sealed, "index/x", "head")).file.packs).toHaveLength(2);
		expect(decoder.threads).toBe(1);
	});
});
