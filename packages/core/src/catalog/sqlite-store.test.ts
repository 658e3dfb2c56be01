import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isHoldfastError } from "../host/errors.js";
import { openCatalog, openCatalogEarly } from "./catalog.js";
import { SqliteKeyvStore } from "./sqlite-store.js";

async function catalogFile() {
	const dir = await mkdtemp(join(tmpdir(), "holdfast-sqlite-store-"));
	return { dir, path: join(dir, "catalog.sqlite") };
}

describe("SqliteKeyvStore.getMany", () => {
	it("answers many keys in the order asked, a miss where a key is absent or expired, past one statement's batch", async () => {
		const { path } = await catalogFile();
		const store = new SqliteKeyvStore(path);
		await store.setMany(Array.from({ length: 2500 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })));
		await store.set("old", "gone", -1000);
		const keys = ["k2499", "absent", "k0", "old", ...Array.from({ length: 2000 }, (_, i) => `k${i + 300}`)];
		const found = await store.getMany(keys);
		expect(found.slice(0, 4)).toEqual(["v2499", undefined, "v0", undefined]);
		expect(found.slice(4)).toEqual(Array.from({ length: 2000 }, (_, i) => `v${i + 300}`));
		// The expired value was dropped, as `get` drops it.
		expect(await store.get("old")).toBeUndefined();
		await store.disconnect();
	});
});

describe("SqliteKeyvStore.keysStartingWith", () => {
	it("lists exactly the keys under a prefix, not those of a neighbouring prefix or a shorter one", async () => {
		const { path } = await catalogFile();
		const store = new SqliteKeyvStore(path);
		const keys = ["ns:index-head:r1:index/a", "ns:index-head:r1:index/b", "ns:index-head:r1", "ns:index-head:r1;x"];
		await store.setMany([...keys, "ns:index-head:r2:index/a", "ns:index:r1:index/a"].map((key) => ({ key, value: "v" })));
		expect((await store.keysStartingWith("ns:index-head:r1:")).sort()).toEqual(keys.slice(0, 2));
		expect(await store.keysStartingWith("ns:tree:")).toEqual([]);
		// Deleting many at once reaches text values and byte files alike.
		store.namespace = "ns";
		await store.setBytes("ns:index-blobs:r1:index/a", Buffer.alloc(32, 1), Buffer.from([1]));
		expect(await store.deleteMany(["ns:index-head:r1:index/a", "ns:index-blobs:r1:index/a", "ns:absent"])).toBe(true);
		expect(await store.keysStartingWith("ns:index-head:r1:")).toEqual(["ns:index-head:r1:index/b"]);
		expect(await store.getBytes("ns:index-blobs:r1:index/a")).toBeUndefined();
		expect(await store.deleteMany(["ns:absent"])).toBe(false);
		await store.disconnect();
	});
});

describe("SqliteKeyvStore byte values", () => {
	it("keeps bytes in files beside the database, replacing a text value under the same key; delete and clear reach both", async () => {
		const { dir, path } = await catalogFile();
		const store = new SqliteKeyvStore(path);
		store.namespace = "holdfast";
		await store.set("holdfast:index-blobs:a", "an older layout");
		await store.setBytes("holdfast:index-blobs:a", Buffer.alloc(32, 1), Buffer.from([1, 2, 3]));
		expect(await store.get("holdfast:index-blobs:a")).toBeUndefined();
		expect(await store.getBytes("holdfast:index-blobs:a")).toEqual({ mac: Buffer.alloc(32, 1), value: Buffer.from([1, 2, 3]) });
		expect(await readdir(join(dir, "catalog.sqlite.values/holdfast"))).toHaveLength(1);
		// A view into a larger buffer is stored as just its bytes.
		const big = new Uint8Array(16).fill(9);
		await store.setBytes("holdfast:index-blobs:b", new Uint8Array(32), big.subarray(4, 8));
		expect((await store.getBytes("holdfast:index-blobs:b"))?.value).toEqual(Buffer.from([9, 9, 9, 9]));
		expect(await store.delete("holdfast:index-blobs:b")).toBe(true);
		expect(await store.getBytes("holdfast:index-blobs:b")).toBeUndefined();
		await store.disconnect();
		// Another process, another namespace: the files are what it reads.
		const other = new SqliteKeyvStore(path);
		other.namespace = "other";
		await other.setBytes("other:index-blobs:c", new Uint8Array(32), Buffer.from([4]));
		other.namespace = "holdfast";
		expect((await other.getBytes("holdfast:index-blobs:a"))?.value).toEqual(Buffer.from([1, 2, 3]));
		await other.clear();
		expect(await other.getBytes("holdfast:index-blobs:a")).toBeUndefined();
		other.namespace = "other";
		expect(await other.getBytes("other:index-blobs:c")).toBeDefined();
		await other.disconnect();
	});

	it("misses on a file cut shorter than its MAC, and in memory keeps values in the process", async () => {
		const { dir, path } = await catalogFile();
		const store = new SqliteKeyvStore(path);
		await store.setBytes("k", Buffer.alloc(32, 2), Buffer.from([5]));
		const [file] = await readdir(
			join(dir, "catalog.sqlite.values/_e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
		);
		await writeFile(
			join(dir, "catalog.sqlite.values/_e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", file as string),
			"short",
		);
		expect(await store.getBytes("k")).toBeUndefined();
		await store.disconnect();
		const memory = new SqliteKeyvStore(":memory:");
		await memory.setBytes("k", Buffer.alloc(32, 3), Buffer.from([6]));
		expect((await memory.getBytes("k"))?.value).toEqual(Buffer.from([6]));
		await memory.disconnect();
	});
});

describe("SqliteKeyvStore on a damaged file", () => {
	it("sets a file that is no database aside, warns once, and works on a fresh one", async () => {
		const { dir, path } = await catalogFile();
		// Damage to a catalog of ours: its values folder beside it says so.
		await writeFile(path, "not a database\n".repeat(500));
		await mkdir(`${path}.values`);
		const lines: string[] = [];
		const store = new SqliteKeyvStore(path, (line) => lines.push(line));
		await store.set("k", "v");
		expect(await store.get("k")).toBe("v");
		await store.disconnect();
		expect(lines).toHaveLength(1);
		expect(lines[0]).toMatch(
			/^catalog .*catalog\.sqlite is damaged \(.+\); it is only a cache: kept aside as catalog\.sqlite\.damaged-\d{8}T\d{6}Z and rebuilt from the destination$/,
		);
		const aside = (await readdir(dir)).filter((name) => name.startsWith("catalog.sqlite.damaged-"));
		expect(aside).toHaveLength(1);
		expect(await readFile(join(dir, aside[0] as string), "utf8")).toContain("not a database");
	});

	it("replaces a file found damaged mid-run: the read is a miss, later writes land in the fresh file", async () => {
		const { dir, path } = await catalogFile();
		const first = new SqliteKeyvStore(path);
		await first.setMany(Array.from({ length: 400 }, (_, i) => ({ key: `k${i}`, value: "x".repeat(500) })));
		await first.disconnect();
		// All but the last four pages stay sound, so the file opens; the pages holding the last rows become noise.
		const bytes = await readFile(path);
		bytes.fill(0xa5, bytes.length - 4 * 4096);
		await writeFile(path, bytes);
		const lines: string[] = [];
		const store = new SqliteKeyvStore(path, (line) => lines.push(line));
		expect(lines).toEqual([]);
		const found = await Promise.all(Array.from({ length: 400 }, (_, i) => store.get(`k${i}`)));
		expect(found).toContain(undefined);
		expect(lines).toHaveLength(1);
		expect(lines[0]).toMatch(/is damaged \(.*malformed.*\); it is only a cache/);
		await store.set("after", "ok");
		await store.disconnect();
		const reopened = new SqliteKeyvStore(path, (line) => lines.push(line));
		expect(await reopened.get("after")).toBe("ok");
		expect(await reopened.get("k1")).toBeUndefined();
		await reopened.disconnect();
		expect(lines).toHaveLength(1);
		expect((await readdir(dir)).filter((name) => name.includes(".damaged-") && !/-(wal|shm)$/.test(name))).toHaveLength(1);
	});

	it("a value whose stored JSON no longer parses is a miss through keyv, not an error", async () => {
		const { dir, path } = await catalogFile();
		const catalog = await openCatalog(`sqlite://${path}`, dir);
		await catalog.set("k", { a: 1 });
		const store = catalog.store as SqliteKeyvStore;
		await store.set("holdfast:k", '{"value":{"a":1');
		expect(await catalog.get("k")).toBeUndefined();
		await catalog.disconnect();
	});
});

describe("opening a SQLite catalog", () => {
	it("creates no file until the first statement, or until asked to open early", async () => {
		const { dir } = await catalogFile();
		const path = join(dir, "state", "catalog.sqlite");
		const catalog = await openCatalog(`sqlite://${path}`, dir);
		const store = catalog.store as SqliteKeyvStore;
		expect(existsSync(path)).toBe(false);
		expect(store.isOpen).toBe(false);
		// Closing a catalog that never opened leaves no file behind.
		await catalog.disconnect();
		expect(existsSync(path)).toBe(false);
		const early = await openCatalog(`sqlite://${path}`, dir);
		openCatalogEarly(early);
		expect((early.store as SqliteKeyvStore).isOpen).toBe(true);
		expect(existsSync(path)).toBe(true);
		await early.set("k", "v");
		await early.disconnect();
		const later = await openCatalog(`sqlite://${path}`, dir);
		expect(await later.get("k")).toBe("v");
		expect((later.store as SqliteKeyvStore).isOpen).toBe(true);
		await later.disconnect();
	});

	it("a catalog path under a file says where, as a config problem, before any statement", async () => {
		const { dir } = await catalogFile();
		await writeFile(join(dir, "plain"), "a file, not a folder\n");
		const failure = await openCatalog("sqlite://./plain/catalog.sqlite", dir).catch((error: unknown) => error);
		expect(isHoldfastError(failure, "CONFIG_INVALID")).toBe(true);
		expect((failure as Error).message).toMatch(/^catalog: cannot open .*plain\/catalog\.sqlite: /);
	});
});

describe("SqliteKeyvStore on a path that is no catalog", () => {
	it("refuses a user's own file or folder, and leaves it as it was", async () => {
		const { dir } = await catalogFile();
		const notes = join(dir, "notes.txt");
		await writeFile(notes, "my notes\n");
		const lines: string[] = [];
		const onFile = new SqliteKeyvStore(notes, (line) => lines.push(line));
		await expect(onFile.get("k")).rejects.toThrow(
			/^catalog: .*notes\.txt is not a SQLite file, so not a holdfast catalog: name another path; nothing was changed$/,
		);
		expect(await readFile(notes, "utf8")).toBe("my notes\n");
		const folder = join(dir, "photos");
		await mkdir(folder);
		await writeFile(join(folder, "a.jpg"), "jpeg");
		const onFolder = new SqliteKeyvStore(folder, (line) => lines.push(line));
		await expect(onFolder.get("k")).rejects.toThrow(/photos is a folder: name a file for the catalog/);
		expect(await readdir(folder)).toEqual(["a.jpg"]);
		expect(await readdir(dir)).not.toContainEqual(expect.stringContaining(".damaged-"));
		expect(lines).toEqual([]);
	});
});
