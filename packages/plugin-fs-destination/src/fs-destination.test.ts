import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "@holdfast/core";
import { destinationConformance } from "@holdfast/core/testing";
import { describe, expect, it } from "vitest";
import { FsDestination } from "./fs-destination.js";
import { FsStore } from "./fs-store.js";

destinationConformance("fs", async () => {
	const dir = await mkdtemp(join(tmpdir(), "holdfast-fsdest-"));
	const clock = new ManualClock("2030-01-01T00:00:00Z");
	return {
		destination: new FsDestination({ path: dir }, clock),
		now: () => clock.now(),
		passTime: async (until) => clock.set(until.getTime() + 1),
		shortLockMs: 60_000,
		dispose: () => rm(dir, { recursive: true, force: true }),
	};
});

describe("fs destination", () => {
	it("leaves no temporary file behind and declares emulated locks", async () => {
		const dir = await mkdtemp(join(tmpdir(), "holdfast-fsdest-"));
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const destination = new FsDestination({ path: dir, lockExtension: false }, clock);
		await destination.put("data/ab/abc", Buffer.from("x"), { mode: "compliance", until: new Date("2030-02-01T00:00:00Z") });
		const files = await readdir(join(dir, "objects", "data", "ab", "abc.versions"));
		expect(files.some((f) => f.startsWith(".tmp-"))).toBe(false);
		expect(files.filter((f) => f.endsWith(".data"))).toHaveLength(1);
		expect(destination.capabilities.enforcedByProvider).toBe(false);
		expect(destination.capabilities.lockExtension).toBe(false);
		await rm(dir, { recursive: true, force: true });
	});

	it("stores a version from a file it leaves as it was, and refuses a file that is not the size told", async () => {
		const dir = await mkdtemp(join(tmpdir(), "holdfast-fsdest-"));
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const destination = new FsDestination({ path: dir }, clock);
		const lock = { mode: "compliance", until: new Date("2030-02-01T00:00:00Z") } as const;
		const source = join(dir, "pack.tmp");
		const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 13) % 256));
		await writeFile(source, bytes);
		const { versionId } = await destination.putFile({ key: "data/ab/abc", path: source, size: bytes.length, lock });
		// The caller removes its file after the upload: the stored version must not go with it.
		await rm(source);
		expect(Buffer.from(await destination.get("data/ab/abc", { versionId })).equals(bytes)).toBe(true);
		expect(await destination.head("data/ab/abc", versionId)).toMatchObject({ size: bytes.length, lock });
		await writeFile(source, bytes);
		await expect(destination.putFile({ key: "data/ab/abd", path: source, size: bytes.length - 1, lock })).rejects.toThrow(
			`${source}: holds ${bytes.length} bytes where ${bytes.length - 1} were written`,
		);
		expect(Buffer.from(await readFile(source)).equals(bytes)).toBe(true);
		const left = await readdir(join(dir, "objects", "data", "ab", "abd.versions")).catch(() => []);
		expect(left).toEqual([]);
		await rm(dir, { recursive: true, force: true });
	});

	it("lists bytes whose lock record a crash cut off as an unlocked version, which can be deleted", async () => {
		const dir = await mkdtemp(join(tmpdir(), "holdfast-fsdest-"));
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const destination = new FsDestination({ path: dir }, clock);
		const lock = { mode: "compliance", until: new Date("2030-02-01T00:00:00Z") } as const;
		const { versionId } = await destination.put("data/ab/abc", Buffer.from("torn"), lock);
		const versions = join(dir, "objects", "data", "ab", "abc.versions");
		await rm(join(versions, `${versionId}.json`));
		const listed = [];
		for await (const version of destination.listVersions("data/")) listed.push(version);
		expect(listed).toMatchObject([{ key: "data/ab/abc", versionId, size: 4, isDeleteMarker: false, incomplete: true }]);
		expect(listed[0]?.lock).toBeUndefined();
		expect(Buffer.from(await destination.get("data/ab/abc", { versionId })).toString()).toBe("torn");
		// Asked for the object rather than that version, the store has none: the write never completed.
		await expect(destination.get("data/ab/abc")).rejects.toThrow(/not found/);
		await destination.deleteVersion("data/ab/abc", versionId);
		await expect(readdir(versions)).rejects.toThrow();
		await rm(dir, { recursive: true, force: true });
	});

	it("keeps the latest date when two writers extend one version at once", async () => {
		const dir = await mkdtemp(join(tmpdir(), "holdfast-fsdest-"));
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		// Two destinations on one folder stand for two processes: neither sees the other's memory.
		const [a, b] = [new FsDestination({ path: dir }, clock), new FsDestination({ path: dir }, clock)];
		const { versionId } = await a.put("data/ab/abc", Buffer.from("x"), { mode: "compliance", until: new Date("2030-02-01") });
		const day = (n: number) => new Date(Date.UTC(2030, 2, n));
		const attempts = Array.from({ length: 20 }, (_, i) => {
			const writer = i % 2 === 0 ? a : b;
			// A writer asking for less than is set meanwhile is refused, as S3 refuses it; never applied.
			return writer.extendLock("data/ab/abc", versionId, { mode: "compliance", until: day(i + 1) }).catch(() => undefined);
		});
		await Promise.all(attempts);
		expect((await a.head("data/ab/abc", versionId))?.lock?.until).toEqual(day(20));
		const files = await readdir(join(dir, "objects", "data", "ab", "abc.versions"));
		expect(files.some((f) => f.endsWith(".guard"))).toBe(false);
		await rm(dir, { recursive: true, force: true });
	});

	it("refuses a write whose retain-until is already past", async () => {
		const dir = await mkdtemp(join(tmpdir(), "holdfast-fsdest-"));
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const destination = new FsDestination({ path: dir }, clock);
		await expect(
			destination.put("k", Buffer.from("x"), { mode: "compliance", until: new Date("2029-01-01T00:00:00Z") }),
		).rejects.toThrow(/past/);
		await rm(dir, { recursive: true, force: true });
	});

	it("keeps its on-disk lock records: a record in the layout earlier versions wrote is judged, and new records have that layout", async () => {
		const dir = await mkdtemp(join(tmpdir(), "holdfast-fsdest-"));
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		// A version as an earlier holdfast left it: bytes and a JSON record beside them.
		const versions = join(dir, "objects", "data", "ab", "old.versions");
		await mkdir(versions, { recursive: true });
		const old = { versionId: "0000000010000abcd1234", size: 3, created: "2029-12-01T00:00:00.000Z", deleteMarker: false };
		const lock = { mode: "compliance", until: "2030-03-01T00:00:00.000Z" };
		await writeFile(join(versions, `${old.versionId}.data`), "old");
		await writeFile(join(versions, `${old.versionId}.json`), JSON.stringify({ ...old, lock }));
		const destination = new FsDestination({ path: dir }, clock);
		expect((await destination.head("data/ab/old"))?.lock).toEqual({ mode: "compliance", until: new Date(lock.until) });
		await expect(destination.deleteVersion("data/ab/old", old.versionId)).rejects.toMatchObject({ code: "LOCKED" });
		await destination.extendLock("data/ab/old", old.versionId, { mode: "compliance", until: new Date("2030-04-01T00:00:00Z") });
		expect(JSON.parse(await readFile(join(versions, `${old.versionId}.json`), "utf8"))).toEqual({
			...old,
			lock: { mode: "compliance", until: "2030-04-01T00:00:00.000Z" },
		});
		// What the composed destination writes, the raw store (and any earlier reader) reads as the same record.
		const { versionId } = await destination.put("data/ab/new", Buffer.from("new"), {
			mode: "governance",
			until: new Date("2030-02-01T00:00:00Z"),
		});
		const record = JSON.parse(await readFile(join(dir, "objects", "data", "ab", "new.versions", `${versionId}.json`), "utf8"));
		expect(record).toEqual({
			versionId,
			size: 3,
			created: "2030-01-01T00:00:00.000Z",
			deleteMarker: false,
			lock: { mode: "governance", until: "2030-02-01T00:00:00.000Z" },
		});
		await rm(dir, { recursive: true, force: true });
	});

	it("is a raw store the core wraps: it records locks as told and declares that it enforces none", async () => {
		const dir = await mkdtemp(join(tmpdir(), "holdfast-fsdest-"));
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new FsStore({ path: dir }, clock);
		expect(store.capabilities.enforcedByProvider).toBe(false);
		const { versionId } = await store.put("k", Buffer.from("x"), { mode: "compliance", until: new Date("2030-02-01") });
		await store.deleteVersion("k", versionId);
		expect(await store.head("k", versionId)).toBeUndefined();
		expect(await readdir(join(dir, "objects"))).toEqual([]);
		await rm(dir, { recursive: true, force: true });
	});
});
