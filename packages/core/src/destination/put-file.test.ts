import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ManualClock } from "../host/clock.js";
import { MemoryStore } from "../testing/memory-destination.js";
import { composeDestination } from "./compose.js";
import type { FileDigests, FileUpload } from "./destination.js";
import { DryRunDestination } from "./dry-run.js";
import { RetryBudget } from "./faults.js";
import { EmulatedLocks } from "./lock-emulation.js";
import { putFromFile } from "./put-file.js";
import { RetryingDestination } from "./retry.js";

const clock = new ManualClock("2030-01-01T00:00:00Z");
const lock = { mode: "compliance" as const, until: new Date("2030-02-01T00:00:00Z") };
const reset = () => Object.assign(new Error("write ECONNRESET"), { code: "ECONNRESET" });
const body = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 31) % 251));

let dir: string;
let path: string;
beforeEach(async () => {
	dir = await mkdtemp(join(tmpdir(), "put-file-test-"));
	path = join(dir, "pack");
	await writeFile(path, body);
});
afterEach(async () => {
	await rm(dir, { recursive: true, force: true });
});

/** A store that takes files itself, reading each one as a store reading it for upload would. */
class FileStore extends MemoryStore {
	readonly sent: Buffer[] = [];
	readonly digests: (FileDigests | undefined)[] = [];
	failures = 0;

	async putFile({ key, path: file, size, lock: objectLock, digests }: FileUpload): Promise<{ versionId: string }> {
		const read = await readFile(file);
		this.sent.push(read);
		this.digests.push(digests);
		// A body cut off midway, as a dropped connection leaves it.
		if (this.failures-- > 0) throw reset();
		expect(read.length).toBe(size);
		return this.put(key, read, objectLock);
	}
}

const fastRetry = (store: MemoryStore) =>
	new RetryingDestination(store, new RetryBudget(store.description, { budgetMs: 60_000, baseDelayMs: 1, maxDelayMs: 2 }));

describe("storing an object from a file", () => {
	it("works through every layer for a store without putFile: the file is read and put whole", async () => {
		const store = new MemoryStore(clock);
		expect("putFile" in store).toBe(false);
		const destination = composeDestination(store, { clock });
		const { versionId } = await putFromFile(destination, { key: "data/ab", path, size: body.length, lock });
		expect(Buffer.from(await destination.get("data/ab", { versionId })).equals(body)).toBe(true);
		expect((await destination.head("data/ab"))?.lock?.until).toEqual(lock.until);
	});

	it("refuses a file that is not the size written, naming the file", async () => {
		const destination = composeDestination(new MemoryStore(clock), { clock });
		await expect(putFromFile(destination, { key: "data/ab", path, size: body.length + 1, lock })).rejects.toThrow(
			`${path}: holds ${body.length} bytes where ${body.length + 1} were written for data/ab`,
		);
		expect(await destination.head("data/ab")).toBeUndefined();
	});

	it("reads the file again whole on every retried attempt, without putFile and with it", async () => {
		const plain = new MemoryStore(clock, { enforcedByProvider: true });
		const attempts: Uint8Array[] = [];
		const put = plain.put.bind(plain);
		plain.put = async (key, bytes, objectLock) => {
			attempts.push(bytes);
			if (attempts.length === 1) throw reset();
			return put(key, bytes, objectLock);
		};
		await putFromFile(fastRetry(plain), { key: "data/ab", path, size: body.length, lock });
		expect(attempts).toHaveLength(2);
		expect(attempts[1]).not.toBe(attempts[0]);
		for (const sent of attempts) expect(Buffer.from(sent).equals(body)).toBe(true);

		const taking = new FileStore(clock, { enforcedByProvider: true });
		taking.failures = 2;
		const { versionId } = await putFromFile(fastRetry(taking), { key: "data/cd", path, size: body.length, lock });
		expect(taking.sent).toHaveLength(3);
		for (const sent of taking.sent) expect(sent.equals(body)).toBe(true);
		expect(Buffer.from(await taking.get("data/cd", { versionId })).equals(body)).toBe(true);
	});

	it("hands the file to a store that takes files, below lock emulation, which still refuses a lock in the past", async () => {
		const store = new FileStore(clock);
		const destination = composeDestination(store, { clock });
		await putFromFile(destination, { key: "data/ab", path, size: body.length, lock });
		expect(store.sent).toHaveLength(1);
		const past = { mode: "compliance" as const, until: new Date("2029-12-31T00:00:00Z") };
		await expect(
			putFromFile(new EmulatedLocks(store, clock), { key: "data/cd", path, size: body.length, lock: past }),
		).rejects.toThrow(/retain-until .* is in the past/);
		expect(store.sent).toHaveLength(1);
	});

	it("passes the digests the caller computed through every layer, on every retried attempt", async () => {
		const store = new FileStore(clock, { enforcedByProvider: true });
		store.failures = 1;
		const digests = { md5: "bWQ1IG9mIHRoZSBmaWxl" };
		await putFromFile(fastRetry(store), { key: "data/ab", path, size: body.length, lock, digests });
		await putFromFile(composeDestination(store, { clock }), { key: "data/cd", path, size: body.length, lock, digests });
		await putFromFile(composeDestination(store, { clock }), { key: "data/ef", path, size: body.length, lock });
		expect(store.digests).toEqual([digests, digests, digests, undefined]);
	});

	it("stores nothing in a dry run and counts the file's size without reading it", async () => {
		const store = new FileStore(clock);
		const dry = new DryRunDestination(composeDestination(store, { clock }));
		await putFromFile(dry, { key: "data/ab", path: join(dir, "not there"), size: 1234, lock });
		expect(dry.counts).toMatchObject({ puts: 1, bytes: 1234 });
		expect(store.sent).toHaveLength(0);
		expect(await store.head("data/ab")).toBeUndefined();
	});
});
