import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HoldfastError } from "../host/errors.js";
import type { BlobLocation } from "../repository/index-file.js";
import type { RangeBlob, Repository } from "../repository/repository.js";
import type { TreeNode } from "../repository/tree.js";
import { type FileTask, PackRestorer } from "./restore-packs.js";
import { type RangeFiles, type WholeFile, writeRange } from "./restore-range-work.js";

/** A repository of blobs in packs, held in memory; it records every ranged read asked of it. */
function fakeRepository(
	packs: Record<string, Record<string, Buffer>>,
	options: { failPack?: string; readsInFlight?: number; damaged?: ReadonlySet<string>; versions?: number } = {},
) {
	const blobs = new Map<string, BlobLocation & { data: Buffer }>();
	for (const [packKey, content] of Object.entries(packs)) {
		let offset = 0;
		for (const [id, data] of Object.entries(content)) {
			// Sealed blobs are longer than their plaintext: 10 bytes of "sealing" each.
			blobs.set(id, { type: "data", packKey, offset, length: data.length + 10, rawLength: data.length, data });
			offset += data.length + 10 + 5;
		}
	}
	const reads: { packKey: string; ids: string[] }[] = [];
	const wholeFiles: string[] = [];
	const sent: (readonly WholeFile[])[] = [];
	let inflight = 0;
	let maxInflight = 0;
	let readsNow = 0;
	let maxReads = 0;
	const repository = {
		destination: { capabilities: { readsInFlight: options.readsInFlight } },
		index: { blobs },
		locateBlob: async (id: string) => blobs.get(id),
		reader: { versionsOf: async () => Array.from({ length: options.versions ?? 1 }, () => ({})) },
		restoreBlobRange: async (packKey: string, wanted: readonly RangeBlob[], files: RangeFiles, spareDamaged = false) => {
			reads.push({ packKey, ids: wanted.map((b) => b.id) });
			sent.push(files.files);
			const cost = wanted.reduce((sum, b) => sum + b.rawLength, 0);
			inflight += cost;
			maxInflight = Math.max(maxInflight, inflight);
			maxReads = Math.max(maxReads, ++readsNow);
			await new Promise((resolve) => setImmediate(resolve));
			inflight -= cost;
			readsNow--;
			if (packKey === options.failPack) throw new Error(`${packKey}: no version of it verifies`);
			const bad = wanted.filter((b) => options.damaged?.has(b.id));
			if (bad.length === wanted.length || (bad.length > 0 && !spareDamaged)) {
				throw new HoldfastError("CORRUPT", `${packKey}: no version of it verifies (blob ${bad[0]?.id})`);
			}
			if (bad.length > 0) {
				// As the pool's thread does when sparing damage: the blobs that verify are written, the others told.
				const plain = wanted.map((b) => (options.damaged?.has(b.id) ? undefined : (blobs.get(b.id)?.data as Buffer)));
				const damaged = bad.map((b) => ({ index: wanted.indexOf(b), message: `blob ${b.id}: authentication failed` }));
				return { ...writeRange(plain, files), damaged };
			}
			const plain = wanted.map((b) => blobs.get(b.id)?.data as Buffer);
			// The files inside the range, and the parts of those spanning ranges, are written as the pool's thread writes them.
			const written = writeRange(plain, files);
			wholeFiles.push(...files.files.slice(0, written.written).map((f) => Buffer.from(f.path.subarray(f.nameAt)).toString()));
			return written;
		},
	} as unknown as Repository;
	return { repository, reads, wholeFiles, sent, maxInflight: () => maxInflight, maxReads: () => maxReads };
}

function fileNode(name: string, content: string[]): TreeNode {
	return { name, type: "file", mode: 0o640, uid: 0, gid: 0, size: 0, mtime: "1600000000123456000", content };
}

let dir: string;
beforeEach(async () => {
	dir = await mkdtemp(join(tmpdir(), "holdfast-restore-packs-"));
});
afterEach(async () => {
	await rm(dir, { recursive: true, force: true });
});

function task(name: string, content: string[], placed: string[]): FileTask {
	const nameBytes = Buffer.from(name);
	return {
		at: { dir: Buffer.from(dir), name: nameBytes, path: Buffer.from(join(dir, name)) },
		display: join(dir, name),
		rel: name,
		node: fileNode(name, content),
		placed: () => placed.push(name),
	};
}

const bytes = (fill: number, length: number) => Buffer.alloc(length, fill);

describe("PackRestorer", () => {
	it("reads each pack's needed span once and writes every use of a blob, in any order of packs", async () => {
		const { repository, reads, wholeFiles } = fakeRepository({
			p1: { a: bytes(1, 3000), b: bytes(2, 5000), unused: bytes(9, 100) },
			p2: { c: bytes(3, 7000), d: bytes(0, 8192) },
		});
		const placed: string[] = [];
		await new PackRestorer(repository, false).restore([
			task("one", ["c", "a", "c"], placed),
			task("two", ["b", "a"], placed),
			task("empty", [], placed),
			task("holes", ["d", "a", "d"], placed),
		]);
		// Each pack read once, its blobs in pack order, each blob asked for once however often used.
		expect(reads).toEqual([
			{ packKey: "p2", ids: ["c", "d"] },
			{ packKey: "p1", ids: ["a", "b"] },
		]);
		expect(await readFile(join(dir, "one"))).toEqual(Buffer.concat([bytes(3, 7000), bytes(1, 3000), bytes(3, 7000)]));
		expect(await readFile(join(dir, "two"))).toEqual(Buffer.concat([bytes(2, 5000), bytes(1, 3000)]));
		expect(await readFile(join(dir, "empty"))).toEqual(Buffer.alloc(0));
		// Zero blocks are holes, and a trailing hole still gives the file its size.
		expect(await readFile(join(dir, "holes"))).toEqual(Buffer.concat([bytes(0, 8192), bytes(1, 3000), bytes(0, 8192)]));
		expect(placed.sort()).toEqual(["empty", "holes", "one", "two"]);
		// Only "two" lies wholly in one read: written where the read is opened, the others here.
		expect(wholeFiles).toEqual(["two"]);
		expect((await readdir(dir)).sort()).toEqual(["empty", "holes", "one", "two"]);
	});

	it("holds no more plaintext in flight than its budget, one read at a time when each is larger", async () => {
		const packs: Record<string, Record<string, Buffer>> = {};
		const content: string[] = [];
		for (let p = 0; p < 6; p++) {
			packs[`p${p}`] = { [`b${p}`]: bytes(p + 1, 40_000) };
			content.push(`b${p}`);
		}
		const { repository, reads, maxInflight } = fakeRepository(packs);
		await new PackRestorer(repository, false, { budgetBytes: 50_000, reads: 4 }).restore([task("big", content, [])]);
		expect(reads).toHaveLength(6);
		expect(maxInflight()).toBe(40_000);
		expect((await readFile(join(dir, "big"))).length).toBe(240_000);
	});

	it("keeps as many reads under way as the destination asks for, and a disk's four when it says nothing", async () => {
		const packs: Record<string, Record<string, Buffer>> = {};
		for (let p = 0; p < 12; p++) packs[`p${p}`] = { [`b${p}`]: bytes(p + 1, 1000) };
		const tasks = () => Array.from({ length: 12 }, (_, i) => task(`f${i}`, [`b${i}`], []));
		const far = fakeRepository(packs, { readsInFlight: 8 });
		await new PackRestorer(far.repository, false).restore(tasks());
		expect(far.maxReads()).toBe(8);
		await rm(dir, { recursive: true });
		await mkdir(dir);
		const near = fakeRepository(packs);
		await new PackRestorer(near.repository, false).restore(tasks());
		expect(near.maxReads()).toBe(4);
		expect((await readdir(dir)).length).toBe(12);
	});

	it("holds 4 MiB per read the destination keeps under way, and no more than 64 MiB", async () => {
		// Each read of one 3 MiB blob holds 6 MiB (its sealed bytes and its plaintext); zeros, so the files are holes.
		const packs: Record<string, Record<string, Buffer>> = {};
		for (let p = 0; p < 12; p++) packs[`p${p}`] = { [`b${p}`]: Buffer.alloc(3 * 1024 * 1024) };
		const tasks = () => Array.from({ length: 12 }, (_, i) => task(`f${i}`, [`b${i}`], []));
		const underWay = async (readsInFlight?: number) => {
			await rm(dir, { recursive: true, force: true });
			await mkdir(dir);
			const fake = fakeRepository(packs, readsInFlight === undefined ? {} : { readsInFlight });
			await new PackRestorer(fake.repository, false).restore(tasks());
			expect((await readdir(dir)).length).toBe(12);
			return fake.maxReads();
		};
		// A disk's 16 MiB holds two such reads; 8 reads' 32 MiB five; 64 reads' would be 256 MiB, held to 64: ten.
		expect(await underWay()).toBe(2);
		expect(await underWay(8)).toBe(5);
		expect(await underWay(64)).toBe(10);
	});

	it("a pack that cannot be read fails the batch naming a file, and leaves no temporary file", async () => {
		const { repository } = fakeRepository({ good: { a: bytes(1, 100) }, bad: { b: bytes(2, 100) } }, { failPack: "bad" });
		const placed: string[] = [];
		await expect(
			new PackRestorer(repository, false).restore([task("whole", ["a"], placed), task("broken", ["a", "b"], placed)]),
		).rejects.toThrow(/^restore: .*\/broken: bad: no version of it verifies$/);
		// Files complete before the failure stay; the unfinished one is gone, temporary name and all.
		expect(await readdir(dir)).toEqual(["whole"]);
		expect(placed).toEqual(["whole"]);
	});

	it("a file written with its read that cannot be created fails the batch naming it, as the system says it", async () => {
		const { repository, wholeFiles } = fakeRepository({ p1: { a: bytes(1, 100), b: bytes(2, 100) } });
		await writeFile(join(dir, "blocker"), "a file where a folder should be");
		const blocked: FileTask = {
			at: { dir: Buffer.from(join(dir, "blocker")), name: Buffer.from("x"), path: Buffer.from(join(dir, "blocker", "x")) },
			display: join(dir, "blocker", "x"),
			rel: "blocker/x",
			node: fileNode("x", ["b"]),
			placed: () => undefined,
		};
		const placed: string[] = [];
		await expect(new PackRestorer(repository, false).restore([task("fine", ["a"], placed), blocked])).rejects.toThrow(
			/^restore: .*\/blocker\/x: not a directory$/,
		);
		// Both lie in one read: written there, the one before the failure in place and counted.
		expect(wholeFiles).toEqual(["fine"]);
		expect(placed).toEqual(["fine"]);
		expect((await readdir(dir)).sort()).toEqual(["blocker", "fine"]);
	});

	it("hands the files of a read to the pool's thread with their paths in one buffer of their exact length", async () => {
		const { repository, sent, wholeFiles } = fakeRepository({ p1: { a: bytes(1, 100), b: bytes(2, 100) } });
		// Names cut from Node's shared pool, as a restore makes them: a whole 8 KiB slab each.
		const pooled = (name: string): FileTask => {
			const t = task(name, name === "first" ? ["a"] : ["b", "a"], []);
			const { dir: d, name: n, path } = t.at;
			return { ...t, at: { dir: Buffer.concat([d]), name: Buffer.concat([n]), path: Buffer.concat([path]) } };
		};
		const tasks = [pooled("first"), pooled("second")];
		expect(tasks[0]?.at.path.buffer.byteLength).toBeGreaterThan(tasks[0]?.at.path.length ?? 0);
		await new PackRestorer(repository, false).restore(tasks);
		expect(wholeFiles).toEqual(["first", "second"]);
		const files = sent[0] ?? [];
		const views = files.map((f) => f.path);
		const shared = views[0]?.buffer;
		expect(views.every((view) => view.buffer === shared)).toBe(true);
		expect(shared?.byteLength).toBe(views.reduce((sum, view) => sum + view.length, 0));
		expect(files.map((f) => Buffer.from(f.path).toString())).toEqual([join(dir, "first"), join(dir, "second")]);
		// The folder is what comes before the slash in front of the name.
		expect(files.map((f) => Buffer.from(f.path.subarray(0, f.nameAt - 1)).toString())).toEqual([dir, dir]);
		expect(await readFile(join(dir, "second"))).toEqual(Buffer.concat([bytes(2, 100), bytes(1, 100)]));
	});

	it("reads a damaged read of a pack of one version once more, sparing the damage: its own file is lost, no other", async () => {
		const content = { s0: bytes(1, 300), b1: bytes(2, 400), d: bytes(4, 200), b3: bytes(5, 600), s4: bytes(6, 300) };
		const { repository, reads } = fakeRepository({ "data/aa/pack": content }, { damaged: new Set(["d"]) });
		const placed: string[] = [];
		const lost: string[] = [];
		await new PackRestorer(repository, false, { onLost: (task, reason) => lost.push(`${task.display}: ${reason}`) }).restore([
			task("small-0", ["s0"], placed),
			task("big", ["b1", "b3"], placed),
			task("victim", ["d"], placed),
			task("small-4", ["s4"], placed),
		]);
		expect(reads).toHaveLength(2);
		expect(lost).toEqual([`${join(dir, "victim")}: blob d: authentication failed`]);
		expect(placed.sort()).toEqual(["big", "small-0", "small-4"]);
		expect(await readFile(join(dir, "big"))).toEqual(Buffer.concat([content.b1, content.b3]));
		expect((await readdir(dir)).sort()).toEqual(["big", "small-0", "small-4"]);
	});

	it("reads a damaged read again in halves: a file whole in it that the halves split is written through both, the damage costs its own file", async () => {
		const content = {
			s0: bytes(1, 300),
			b1: bytes(2, 400),
			b2: bytes(3, 500),
			d: bytes(4, 200),
			b3: bytes(5, 600),
			s4: bytes(6, 300),
		};
		const { repository, reads } = fakeRepository({ "data/aa/pack": content }, { damaged: new Set(["d"]), versions: 2 });
		const placed: string[] = [];
		const lost: string[] = [];
		await new PackRestorer(repository, false, { onLost: (task, reason) => lost.push(`${task.display}: ${reason}`) }).restore([
			task("small-0", ["s0"], placed),
			task("big", ["b1", "b2", "b3"], placed),
			task("victim", ["d"], placed),
			task("small-4", ["s4"], placed),
		]);
		// The whole read; its halves [s0 b1 b2] and [d b3 s4]; the latter's, [d b3] (then [d] and [b3]) and [s4].
		expect(reads.map((r) => r.ids.join(" "))).toEqual(["s0 b1 b2 d b3 s4", "s0 b1 b2", "d b3 s4", "d b3", "d", "b3", "s4"]);
		expect(lost).toEqual([`${join(dir, "victim")}: data/aa/pack: no version of it verifies (blob d)`]);
		expect(placed.sort()).toEqual(["big", "small-0", "small-4"]);
		expect(await readFile(join(dir, "big"))).toEqual(Buffer.concat([content.b1, content.b2, content.b3]));
		expect(await readFile(join(dir, "small-4"))).toEqual(content.s4);
		expect((await readdir(dir)).sort()).toEqual(["big", "small-0", "small-4"]);
	});
});
