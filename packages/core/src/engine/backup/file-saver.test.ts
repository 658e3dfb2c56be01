import { createCipheriv, createHash } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ObjectLock } from "../../destination/destination.js";
import { ManualClock } from "../../host/clock.js";
import { MemoryLogger } from "../../host/logger.js";
import { packFileFolder } from "../../repository/pack-file.js";
import { Repository } from "../../repository/repository.js";
import type { SourceEntry } from "../../source/source.js";
import { MemoryDestination } from "../../testing/memory-destination.js";
import type { BackupSummary } from "../run-types.js";
import { BlobSaver } from "./blob-saver.js";
import { FileSaver } from "./file-saver.js";
import { SlabPool } from "./slab-pool.js";
import { CHANGED } from "./small-file-batch.js";

/** Deterministic bytes that do not compress: an AES-CTR key stream keyed by the seed. */
function noise(size: number, seed: string): Buffer {
	const stream = createCipheriv("aes-256-ctr", createHash("sha256").update(seed).digest(), Buffer.alloc(16));
	return Buffer.concat([stream.update(Buffer.alloc(size)), stream.final()]);
}

/** A file whose content arrives in pieces of `pieceSize`; `size` is what the scan saw. */
function file(name: string, content: Buffer, size = content.length, pieceSize = 1_000_003): SourceEntry {
	return {
		root: "/src",
		relPath: Buffer.from(name),
		type: "file",
		size,
		mode: 0o644,
		uid: 0,
		gid: 0,
		mtimeNs: 0n,
		ctimeNs: 0n,
		inode: 1n,
		device: 1n,
		read: async function* () {
			for (let at = 0; at < content.length; at += pieceSize) yield content.subarray(at, at + pieceSize);
		},
	};
}

/**
 * A file read as the source contract allows at its strictest: every chunk in one buffer,
 * overwritten with junk the moment the next chunk is asked for.
 */
function reusingFile(name: string, content: Buffer, size = content.length, pieceSize = 1_000_003): SourceEntry {
	return {
		...file(name, content, size, pieceSize),
		read: async function* () {
			const buffer = Buffer.alloc(pieceSize);
			for (let at = 0; at < content.length; at += pieceSize) {
				const n = content.copy(buffer, 0, at, at + pieceSize);
				yield buffer.subarray(0, n);
				buffer.fill(0xa5);
			}
		},
	};
}

/**
 * A file whose source reads into the memory the consumer offers with `next()` when it is
 * offered (the first chunk into a buffer of its own, as a generator cannot see the first
 * offer); `offers` counts the chunks read into offered memory.
 */
function offeringFile(name: string, content: Buffer, size = content.length, pieceSize = 1_000_003) {
	const entry: SourceEntry & { offers: number } = {
		...file(name, content, size, pieceSize),
		offers: 0,
		read: async function* (): AsyncGenerator<Uint8Array, void, Uint8Array | undefined> {
			const own = Buffer.alloc(pieceSize);
			let into: Uint8Array = own;
			for (let at = 0; at < content.length; ) {
				const room = into === own ? pieceSize : into.length;
				const n = content.copy(into, 0, at, at + room);
				at += n;
				if (into !== own) entry.offers++;
				const offered = yield into.subarray(0, n);
				own.fill(0xa5);
				into = offered && offered.length > 0 ? offered : own;
			}
		},
	};
	return entry;
}

function emptySummary(): BackupSummary {
	return {
		files: { new: 0, changed: 0, unchanged: 0, reincluded: 0, skipped: 0 },
		dirs: 0,
		bytes: { read: 0, uploaded: 0, added: 0, renewed: 0 },
		objects: { uploaded: 0, extended: 0, renewedBlobs: 0 },
		blobs: { new: 0, reused: 0 },
	};
}

let repository: Repository | undefined;
afterEach(async () => {
	// Spies on shared prototypes go however a test ended: the files of a worker share modules.
	vi.restoreAllMocks();
	await repository?.close();
	repository = undefined;
});

async function setup() {
	const clock = new ManualClock("2030-01-01T00:00:00Z");
	const lock = { mode: "compliance" as const, until: new Date("2030-02-01T00:00:00Z") };
	repository = await Repository.init("pw", lock, {
		destination: new MemoryDestination(clock),
		clock,
		logger: new MemoryLogger(),
		scrypt: { N: 1024, r: 8, p: 1 },
	});
	repository.beginRun(lock);
	const summary = emptySummary();
	const blobs = new BlobSaver(repository, undefined, summary);
	const abort = new AbortController();
	const files = new FileSaver(repository, blobs, summary, abort.signal, 4);
	/** Saves the files concurrently, as the tree saver does, and waits until every blob is packed. */
	const save = async (entries: SourceEntry[]) => {
		const started = [];
		for (const entry of entries) started.push((await files.save(entry)).done);
		files.close();
		const stored = await Promise.all(started);
		await blobs.drain();
		await (repository as Repository).flushPacks();
		return stored;
	};
	return { repo: repository, summary, save, files, blobs, abort };
}

/** The format's reference: the chunker's cut points and the keyed blob IDs, computed in one piece. */
async function reference(repo: Repository, content: Buffer): Promise<{ ids: string[]; chunks: Buffer[] }> {
	const chunks: Buffer[] = [];
	const whole = async function* () {
		yield content;
	};
	for await (const chunk of repo.chunker.chunks(whole())) chunks.push(Buffer.from(chunk));
	return { ids: chunks.map((chunk) => repo.keys.blobId(chunk)), chunks };
}

/** A memory destination whose pack uploads take a while, recording what is held while each runs. */
class SlowPacks extends MemoryDestination {
	uploading = 0;
	/** Uploads under way, and (`held`) this process's pack files, as each upload ran. */
	readonly seen: { uploading: number; packBytes: number; held: number }[] = [];
	held: () => number = () => 0;

	override async put(key: string, body: Uint8Array, lock?: ObjectLock): Promise<{ versionId: string }> {
		if (!key.startsWith("data/")) return super.put(key, body, lock);
		this.uploading++;
		try {
			for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
			this.seen.push({ uploading: this.uploading, packBytes: body.length, held: this.held() });
			return await super.put(key, body, lock);
		} finally {
			this.uploading--;
		}
	}
}

describe("file saver", () => {
	it("uploads at most two packs at once, keeps at most one more pack file, removes them all and gives every byte back", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const lock = { mode: "compliance" as const, until: new Date("2030-02-01T00:00:00Z") };
		const destination = new SlowPacks(clock);
		repository = await Repository.init("pw", lock, {
			destination,
			clock,
			logger: new MemoryLogger(),
			scrypt: { N: 1024, r: 8, p: 1 },
			packSize: 1024 * 1024,
			uploadConcurrency: 2,
		});
		repository.beginRun(lock);
		const summary = emptySummary();
		const blobs = new BlobSaver(repository, undefined, summary);
		const abort = new AbortController();
		const files = new FileSaver(repository, blobs, summary, abort.signal, 4);
		destination.held = () => readdirSync(packFileFolder()).filter((name) => name.startsWith(`${process.pid}-`)).length;
		const started = [];
		for (let i = 0; i < 3; i++) started.push((await files.save(file(`big${i}`, noise(3 * 1024 * 1024, `b${i}`)))).done);
		files.close();
		await Promise.all(started);
		await blobs.drain();
		await repository.flushPacks();
		// More packs than uploads allowed at once, so the cap is what keeps them to two (how many
		// depends on the repository's random chunker seed: 9 MiB of noise cut near 1 MiB).
		expect(destination.seen.length).toBeGreaterThan(2);
		for (const upload of destination.seen) {
			expect(upload.uploading).toBeLessThanOrEqual(2);
			// The packs uploading and the open one: their files, and no more.
			expect(upload.held).toBeGreaterThanOrEqual(1);
			expect(upload.held).toBeLessThanOrEqual(3);
		}
		expect(destination.held()).toBe(0);
		expect(files.budget.used).toBe(0);
	});

	it("fills packs to about their size with blobs that seal much smaller than the room reserved for them", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const lock = { mode: "compliance" as const, until: new Date("2030-02-01T00:00:00Z") };
		const destination = new SlowPacks(clock);
		const packSize = 256 * 1024;
		repository = await Repository.init("pw", lock, {
			destination,
			clock,
			logger: new MemoryLogger(),
			scrypt: { N: 1024, r: 8, p: 1 },
			packSize,
		});
		repository.beginRun(lock);
		const summary = emptySummary();
		const blobs = new BlobSaver(repository, undefined, summary);
		const abort = new AbortController();
		const files = new FileSaver(repository, blobs, summary, abort.signal, 4);
		// Words drawn at random from a few: text that compresses several times over, in small files
		// that are sealed a batch at a time.
		const words = "ledger invoice retention snapshot backup restore bucket object".split(" ");
		const started = [];
		for (let i = 0; i < 1500; i++) {
			const picks = noise(1200, `t${i}`);
			const content = Buffer.from(Array.from(picks, (byte) => words[byte % words.length]).join(" "));
			started.push((await files.save(file(`t${i}`, content))).done);
		}
		files.close();
		await Promise.all(started);
		await blobs.drain();
		await repository.flushPacks();
		const packs = destination.seen.map((upload) => upload.packBytes);
		expect(packs.length).toBeGreaterThan(4);
		// Every pack but the last is at least half full: none was closed on the blobs' worst case.
		for (const bytes of packs.slice(0, -1)) expect(bytes).toBeGreaterThan(packSize / 2);
	});

	it("cuts and names a large file exactly as the format's chunker does, and every blob reads back", async () => {
		const { repo, save } = await setup();
		const tries = vi.spyOn(SlabPool.prototype, "tryGet");
		// Larger than two read buffers, in pieces that straddle their ends.
		const content = noise(21 * 1024 * 1024 + 12_345, "large");
		const [stored] = await save([file("large", content)]);
		// With room in the budget, each buffer's uncut tail went straight into the next.
		expect(tries.mock.results.filter((r) => r.value !== undefined).length).toBeGreaterThanOrEqual(4);
		const expected = await reference(repo, content);
		expect(expected.ids.length).toBeGreaterThan(5);
		expect(stored?.ids).toEqual(expected.ids);
		expect(stored?.size).toBe(content.length);
		for (const [i, id] of expected.ids.entries())
			expect((await repo.loadBlob(id)).equals(expected.chunks[i] as Buffer)).toBe(true);
	});

	it("with room for one read buffer only, sets the uncut tail aside to let that buffer go, with the same cuts and IDs", async () => {
		const { repo, save, files } = await setup();
		// Another stage holds all but one 4 MiB buffer of the budget: no second buffer is to be had beside the first.
		files.budget.hold(files.budget.capacity - 4 * 1024 * 1024);
		const tries = vi.spyOn(SlabPool.prototype, "tryGet");
		const content = noise(13 * 1024 * 1024 + 4321, "one buffer");
		const [stored] = await save([file("tight", content)]);
		expect(stored?.ids).toEqual((await reference(repo, content)).ids);
		// Every refill of a full 4 MiB buffer was refused (a smaller one near the end may fit beside it).
		const full = tries.mock.calls.flatMap(([size], i) => (size >= 4 * 1024 * 1024 ? [tries.mock.results[i]?.value] : []));
		expect(full.length).toBeGreaterThanOrEqual(2);
		expect(full.every((slab) => slab === undefined)).toBe(true);
		files.budget.release(files.budget.capacity - 4 * 1024 * 1024);
		expect(files.budget.used).toBe(0);
	});

	it("grows its buffer when a file grew past its listed size and holds no cut point", async () => {
		const { repo, save } = await setup();
		// Zeros never match the gear mask: every chunk is a maximum one, longer than the first buffer.
		const content = Buffer.alloc(19 * 1024 * 1024);
		const [stored] = await save([file("grown", content, 600 * 1024, 256 * 1024)]);
		const expected = await reference(repo, content);
		expect(expected.chunks.map((c) => c.length)).toEqual([8, 8, 3].map((m) => m * 1024 * 1024));
		expect(stored?.ids).toEqual(expected.ids);
	});

	it("copies a large file's chunks before asking for the next, also when it reads ahead alone", async () => {
		const { repo, save } = await setup();
		// Alone, a large file is read ahead while its buffers are cut; in pieces that straddle their ends.
		const [large] = await save([reusingFile("large", noise(19 * 1024 * 1024 + 777, "reused"), undefined, 3 * 1024 * 1024 + 5)]);
		expect(large?.ids).toEqual((await reference(repo, noise(19 * 1024 * 1024 + 777, "reused"))).ids);
	});

	it("lets a source read a large file straight into its buffers, alone or beside another, with the same cuts and IDs", async () => {
		const { repo, save } = await setup();
		const alone = noise(19 * 1024 * 1024 + 777, "offered alone");
		const [stored] = await save([offeringFile("alone", alone, undefined, 3 * 1024 * 1024 + 5)]);
		expect(stored?.ids).toEqual((await reference(repo, alone)).ids);
		const { repo: again, save: saveTwo } = await setup();
		const one = offeringFile("one", noise(17 * 1024 * 1024 + 3, "one"), undefined, 2 * 1024 * 1024 + 1);
		// Grew past small and past its listed size while read: the first pieces are copied, the rest read in place.
		const grown = noise(12 * 1024 * 1024 + 99, "grown");
		const two = offeringFile("two", grown, 10_000, 64 * 1024);
		const both = await saveTwo([one, two]);
		expect(both[0]?.ids).toEqual((await reference(again, noise(17 * 1024 * 1024 + 3, "one"))).ids);
		expect(both[1]?.ids).toEqual((await reference(again, grown)).ids);
		expect(both[1]?.size).toBe(grown.length);
		expect(one.offers).toBeGreaterThan(0);
		expect(two.offers).toBeGreaterThan(0);
		for (const id of both[1]?.ids ?? []) await again.loadBlob(id);
	});

	it("copies a small file's chunks before asking for the next, also when it grew past small while read", async () => {
		const { repo, save } = await setup();
		const small = noise(9000, "small in pieces");
		const grown = noise(900 * 1024, "grew past small");
		const stored = await save([reusingFile("small", small, small.length, 1000), reusingFile("grown", grown, 10_000, 64 * 1024)]);
		expect(stored[0]?.ids).toEqual([repo.keys.blobId(small)]);
		expect(stored[1]?.ids).toEqual((await reference(repo, grown)).ids);
		expect((await repo.loadBlob(stored[0]?.ids[0] as string)).equals(small)).toBe(true);
	});

	it("batches small files: one blob each, named by content, duplicates stored once, empty files have none", async () => {
		const { repo, summary, save } = await setup();
		const contents = Array.from({ length: 600 }, (_, i) => noise(i % 7 === 0 ? 0 : 1 + ((i * 37) % 9000), `s${i % 450}`));
		const stored = await save(contents.map((content, i) => file(`f${i}`, content, content.length, 4096)));
		for (const [i, content] of contents.entries()) {
			expect(stored[i]?.ids).toEqual(content.length === 0 ? [] : [repo.keys.blobId(content)]);
		}
		const distinct = new Set(contents.filter((c) => c.length > 0).map((c) => repo.keys.blobId(c)));
		expect(summary.blobs.new).toBe(distinct.size);
		expect(summary.blobs.new + summary.blobs.reused).toBe(contents.filter((c) => c.length > 0).length);
		for (const [i, content] of contents.entries()) {
			if (content.length > 0) expect((await repo.loadBlob(stored[i]?.ids[0] as string)).equals(content)).toBe(true);
		}
	});

	it("has small files named by their path read into the batch by the workers, and tells which changed or failed", async () => {
		const { repo, summary, files, blobs } = await setup();
		const hashSeal = vi.spyOn(repo.pool, "hashSealInto");
		const readLocal = vi.spyOn(repo.pool, "readLocal");
		const dir = mkdtempSync(join(tmpdir(), "holdfast-saver-local-"));
		try {
			/** A file on disk, listed as the fs source lists it: the path and the stat of the listing. */
			const local = (name: string, content: Buffer): SourceEntry => {
				const path = join(dir, name);
				writeFileSync(path, content);
				const info = statSync(path, { bigint: true });
				return {
					...file(name, content),
					mtimeNs: info.mtimeNs,
					ctimeNs: info.ctimeNs,
					inode: info.ino,
					local: { path: Buffer.from(path), followLinks: false },
				};
			};
			const contents = Array.from({ length: 400 }, (_, i) => noise(1 + ((i * 61) % 8000), `d${i}`));
			// The first file finds no buffer open: it is left to `save`, and one opens for the next.
			expect(files.saveNow(local("first", contents[0] as Buffer))).toBeUndefined();
			await new Promise<void>((resolve) => setImmediate(resolve));
			const batched = [];
			for (const [i, content] of contents.entries()) {
				const entry = local(`d${i}`, content);
				const added = files.saveNow(entry);
				if (!added) await new Promise<void>((resolve) => setImmediate(resolve));
				batched.push(added ?? files.saveNow(entry));
			}
			// Taken into the batch now, read later: one changes meanwhile, one vanishes.
			const changed = files.saveNow(local("changed", noise(500, "changed")));
			const vanished = files.saveNow(local("vanished", noise(600, "vanished")));
			writeFileSync(join(dir, "changed"), noise(700, "changed again"));
			rmSync(join(dir, "vanished"));
			// Larger than small, empty files and files without a path never take this way.
			expect(files.saveNow(local("large", noise(200_000, "large")))).toBeUndefined();
			expect(files.saveNow(local("empty", Buffer.alloc(0)))).toBeUndefined();
			expect(files.saveNow(file("no-path", noise(300, "no-path")))).toBeUndefined();
			files.close();
			for (const [i, content] of contents.entries()) {
				const added = batched[i];
				expect(added).toBeDefined();
				const outcomes = await added?.outcomes;
				expect(outcomes?.[added?.index as number]).toBe(repo.keys.blobId(content));
			}
			expect((await changed?.outcomes)?.[changed?.index as number]).toBe(CHANGED);
			expect((await vanished?.outcomes)?.[vanished?.index as number]).toMatchObject({ code: "ENOENT" });
			await blobs.drain();
			await repo.flushPacks();
			// Only what was read is stored and counted.
			expect(summary.blobs.new).toBe(contents.length);
			expect(summary.bytes.read).toBe(contents.reduce((sum, c) => sum + c.length, 0));
			// Whole batches went to the workers, read and sealed, not a message per file.
			expect(readLocal.mock.calls.length).toBeGreaterThan(0);
			expect(readLocal.mock.calls.length + hashSeal.mock.calls.length).toBeLessThan(contents.length / 50);
			for (const content of contents.slice(0, 20))
				expect((await repo.loadBlob(repo.keys.blobId(content))).equals(content)).toBe(true);
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});

	it("holds the walk while a few batches sent are still to be read, and lets it on as each is stored", async () => {
		const { repo, files, blobs, abort } = await setup();
		const dir = mkdtempSync(join(tmpdir(), "holdfast-saver-room-"));
		// The workers are slow: each read waits until the test lets it go.
		const held: (() => void)[] = [];
		const readLocal = repo.pool.readLocal.bind(repo.pool);
		vi.spyOn(repo.pool, "readLocal").mockImplementation(
			(data, reads) => new Promise((resolve) => held.push(() => resolve(readLocal(data, reads)))),
		);
		try {
			const local = (name: string): SourceEntry => {
				const path = join(dir, name);
				writeFileSync(path, `content of ${name}`);
				const info = statSync(path, { bigint: true });
				return {
					...file(name, Buffer.from(`content of ${name}`)),
					mtimeNs: info.mtimeNs,
					ctimeNs: info.ctimeNs,
					inode: info.ino,
					local: { path: Buffer.from(path), followLinks: false },
				};
			};
			const sent = async (name: string) => {
				const entry = local(name);
				let batched = files.saveNow(entry);
				if (!batched) {
					await new Promise<void>((resolve) => setImmediate(resolve));
					batched = files.saveNow(entry);
				}
				files.sendGathered();
				return batched;
			};
			const batches = [];
			for (let i = 0; files.roomForSmallFiles === undefined; i++) {
				expect(i).toBeLessThan(64);
				batches.push(await sent(`f${i}`));
			}
			// A few batches ahead, not thousands of files.
			expect(batches.length).toBeGreaterThanOrEqual(2);
			expect(batches.length).toBeLessThanOrEqual(16);
			const room = files.roomForSmallFiles as Promise<void>;
			let roomy = false;
			void room.then(() => (roomy = true));
			await new Promise<void>((resolve) => setImmediate(resolve));
			expect(roomy).toBe(false);
			// One batch read and stored: the walk goes on.
			held.shift()?.();
			await room;
			expect(files.roomForSmallFiles).toBeUndefined();
			// Full again, and the backup aborted meanwhile: the walk's wait ends at once, in the abort.
			while (files.roomForSmallFiles === undefined) batches.push(await sent(`f${batches.length}`));
			const waiting = files.roomForSmallFiles as Promise<void>;
			abort.abort();
			await expect(waiting).rejects.toMatchObject({ code: "ABORTED" });
			for (const release of held.splice(0)) release();
			files.close();
			for (const [i, batched] of batches.entries()) {
				const outcomes = await batched?.outcomes;
				expect(outcomes?.[batched?.index as number]).toBe(repo.keys.blobId(Buffer.from(`content of f${i}`)));
			}
			await blobs.drain();
		} finally {
			rmSync(dir, { recursive: true, force: true });
		}
	});

	it("while the walk waits, small files read in one turn go to the workers in one message, not one each", async () => {
		const { repo, files, blobs } = await setup();
		const hash = vi.spyOn(repo.pool, "hash");
		const hashSeal = vi.spyOn(repo.pool, "hashSealInto");
		// The walk has ended: nothing is held back for a fuller batch.
		files.close();
		const contents = Array.from({ length: 50 }, (_, i) => noise(100 + i * 50, `w${i}`));
		const started = [];
		for (const [i, content] of contents.entries()) started.push((await files.save(file(`w${i}`, content))).done);
		const stored = await Promise.all(started);
		await blobs.drain();
		for (const [i, content] of contents.entries()) expect(stored[i]?.ids).toEqual([repo.keys.blobId(content)]);
		const trips = hash.mock.calls.length + hashSeal.mock.calls.length;
		expect(trips).toBeGreaterThan(0);
		expect(trips).toBeLessThan(contents.length / 5);
	});

	it("sends new small files to the workers once, to be hashed and sealed together", async () => {
		const { repo, summary, save } = await setup();
		const hash = vi.spyOn(repo.pool, "hash");
		const sealInto = vi.spyOn(repo.pool, "sealInto");
		const hashSeal = vi.spyOn(repo.pool, "hashSealInto");
		const contents = Array.from({ length: 300 }, (_, i) => noise(1 + ((i * 53) % 8000), `once${i}`));
		const stored = await save(contents.map((content, i) => file(`o${i}`, content)));
		expect(hashSeal.mock.calls.length).toBeGreaterThan(0);
		expect(hash).not.toHaveBeenCalled();
		expect(sealInto).not.toHaveBeenCalled();
		expect(summary.blobs).toEqual({ new: 300, reused: 0 });
		for (const [i, content] of contents.entries()) {
			expect(stored[i]?.ids).toEqual([repo.keys.blobId(content)]);
			expect((await repo.loadBlob(stored[i]?.ids[0] as string)).equals(content)).toBe(true);
		}
	});

	it("drops the sealed copies of blobs already stored, and hashes first once most files turn out stored", async () => {
		const { repo, summary, save } = await setup();
		const contents = Array.from({ length: 300 }, (_, i) => noise(1 + ((i * 53) % 8000), `known${i}`));
		await save(contents.map((content, i) => file(`k${i}`, content)));
		const added = summary.bytes.added;
		const packs = repo.stats.packs;
		expect(packs).toBeGreaterThan(0);
		const hash = vi.spyOn(repo.pool, "hash");
		// The same contents under other names, three times over: every blob is stored already.
		const again = [...contents, ...contents, ...contents];
		const stored = await save(again.map((content, i) => file(`copy${i}`, content, content.length, 4096)));
		for (const [i, content] of again.entries()) expect(stored[i]?.ids).toEqual([repo.keys.blobId(content)]);
		expect(summary.blobs).toEqual({ new: 300, reused: 900 });
		expect(summary.bytes.added).toBe(added);
		// Nothing new: no pack was written for the copies.
		expect(repo.stats.packs).toBe(packs);
		expect(hash).toHaveBeenCalled();
	});
});
