import { spawnSync } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ObjectLock } from "../destination/destination.js";
import { ManualClock } from "../host/clock.js";
import { MemoryLogger } from "../host/logger.js";
import { MemoryDestination } from "../testing/memory-destination.js";
import { packFileFolder, removeStalePackFiles } from "./pack-file.js";
import { Repository } from "./repository.js";

const lock = { mode: "compliance" as const, until: new Date("2030-02-01T00:00:00Z") };

/** This process's pack files. */
async function ownPackFiles(): Promise<string[]> {
	const names = await readdir(packFileFolder()).catch(() => [] as string[]);
	return names.filter((name) => name.startsWith(`${process.pid}-`));
}

/** A store that refuses every pack (a full disk, a revoked key): not a fault worth retrying. */
class RefusesPacks extends MemoryDestination {
	override async put(key: string, body: Uint8Array, objectLock?: ObjectLock): Promise<{ versionId: string }> {
		if (key.startsWith("data/")) throw Object.assign(new Error("refused"), { code: "EACCES" });
		return super.put(key, body, objectLock);
	}
}

let repository: Repository | undefined;
afterEach(async () => {
	await repository?.close();
	repository = undefined;
});

async function open(destination: MemoryDestination): Promise<Repository> {
	const clock = new ManualClock("2030-01-01T00:00:00Z");
	repository = await Repository.init("pw", lock, {
		destination,
		clock,
		logger: new MemoryLogger(),
		scrypt: { N: 1024, r: 8, p: 1 },
		packSize: 64 * 1024,
	});
	repository.beginRun(lock);
	return repository;
}

const noise = (length: number, seed: number) => Buffer.from(Array.from({ length }, (_, i) => (i * 7919 + seed * 104729) % 256));

describe("pack uploader", () => {
	it("stores packs from their files and removes each file once stored", async () => {
		const repo = await open(new MemoryDestination(new ManualClock("2030-01-01T00:00:00Z")));
		const ids = [];
		for (let i = 0; i < 6; i++) ids.push((await repo.saveBlob("data", noise(30_000, i))).id);
		await repo.flushPacks();
		expect(repo.stats.packs).toBeGreaterThan(1);
		for (const [i, id] of ids.entries()) expect((await repo.loadBlob(id)).equals(noise(30_000, i))).toBe(true);
		expect(await ownPackFiles()).toEqual([]);
	});

	it("leaves no pack file behind when the upload fails, nor for a pack left open when the repository closes", async () => {
		const repo = await open(new RefusesPacks(new ManualClock("2030-01-01T00:00:00Z")));
		for (let i = 0; i < 3; i++) await repo.saveBlob("data", noise(30_000, i)).catch(() => undefined);
		await expect(repo.flushPacks()).rejects.toThrow(/refused/);
		expect(await ownPackFiles()).toEqual([]);
		// A blob added after the failure opens a pack the failed run never flushes: closing removes its file.
		await repo.saveBlob("tree", Buffer.from("a tree after the failure"));
		// The file is opened without the pack waiting for it: it appears a few turns later.
		for (let turn = 0; turn < 1000 && (await ownPackFiles()).length === 0; turn++) await new Promise(setImmediate);
		expect(await ownPackFiles()).toHaveLength(1);
		await repo.close();
		repository = undefined;
		expect(await ownPackFiles()).toEqual([]);
	});

	it("removes pack files of processes that are gone, and only those", async () => {
		const dir = await mkdtemp(join(tmpdir(), "pack-files-"));
		try {
			const gone = spawnSync(process.execPath, ["-e", ""]).pid;
			await writeFile(join(dir, `${gone}-aaaa.pack.tmp`), "left by a killed run");
			await writeFile(join(dir, `${process.pid}-bbbb.pack.tmp`), "this process's own");
			await writeFile(join(dir, "notes.txt"), "not a pack file");
			expect(await removeStalePackFiles(dir)).toBe(1);
			expect((await readdir(dir)).sort()).toEqual([`${process.pid}-bbbb.pack.tmp`, "notes.txt"]);
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});
});
