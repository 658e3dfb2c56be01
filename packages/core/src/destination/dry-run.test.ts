import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Keyv from "keyv";
import { describe, expect, it } from "vitest";
import { openCatalog } from "../catalog/catalog.js";
import { CatalogCache } from "../catalog/catalog-cache.js";
import { ManualClock } from "../host/clock.js";
import { MemoryDestination } from "../testing/memory-destination.js";
import { DryRunDestination, readOnlyCatalog } from "./dry-run.js";

describe("dry-run destination", () => {
	it("reads the store, and counts every write without sending it", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new MemoryDestination(clock);
		const lock = { mode: "compliance", until: new Date("2030-02-01T00:00:00Z") } as const;
		const { versionId } = await store.put("data/a", Buffer.from("stored"), lock);
		const before = store.calls.put;
		const dry = new DryRunDestination(store);

		expect(Buffer.from(await dry.get("data/a")).toString()).toBe("stored");
		expect((await dry.head("data/a"))?.versionId).toBe(versionId);
		expect(await dry.put("data/b", Buffer.from("12345"), lock)).toEqual({ versionId: "" });
		await dry.extendLock("data/a", versionId, { mode: "compliance", until: new Date("2030-03-01T00:00:00Z") });
		// Even a delete the store would refuse is only counted: a dry run asks nothing of the store.
		await dry.deleteVersion("data/a", versionId);
		await dry.deleteMarker("data/a");

		expect(dry.counts).toEqual({ puts: 1, bytes: 5, extensions: 1, deletes: 1, markers: 1 });
		expect(store.calls.put).toBe(before);
		expect(store.calls.extend + store.calls.delete).toBe(0);
		expect([...store.objects.keys()]).toEqual(["data/a"]);
		expect((await store.head("data/a", versionId))?.lock?.until).toEqual(lock.until);
	});

	it("never lets a preflight create the store, and gives another key the same wrapper", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new MemoryDestination(clock);
		const asked: boolean[] = [];
		Object.assign(store, {
			preflight: async (request: { create: boolean }) => {
				asked.push(request.create);
				return { ok: true, problems: [], notes: [] };
			},
			withKey: () => new MemoryDestination(clock),
		});
		const dry = new DryRunDestination(store);
		await dry.preflight({ mode: "compliance", create: true });
		expect(asked).toEqual([false]);
		const keyed = dry.withKey("groom");
		expect(keyed).toBeInstanceOf(DryRunDestination);
		await keyed?.deleteVersion("k", "v");
		expect((keyed as DryRunDestination).counts.deletes).toBe(1);
	});

	it("reads the catalog and drops what a dry run would cache", async () => {
		const catalog = new Keyv();
		await catalog.set("kept", "before");
		const view = readOnlyCatalog(catalog);
		expect(await view.get("kept")).toBe("before");
		await view.set("kept", "after");
		await view.setMany([{ key: "new", value: 1 }]);
		await view.delete("kept");
		expect(await catalog.get("kept")).toBe("before");
		expect(await catalog.get("new")).toBeUndefined();
	});

	it("drops the byte values a SQLite catalog keeps in files beside it, and still reads them", async () => {
		const dir = await mkdtemp(join(tmpdir(), "holdfast-dry-catalog-"));
		try {
			const catalog = await openCatalog("sqlite://./catalog.sqlite", dir);
			const key = randomBytes(32);
			await new CatalogCache(catalog, key).setBytes("index-blobs:r:kept", Buffer.from("before"));
			const dry = new CatalogCache(readOnlyCatalog(catalog), key);
			expect(Buffer.from((await dry.getBytes("index-blobs:r:kept")) ?? []).toString()).toBe("before");
			const files = await readdir(join(dir, "catalog.sqlite.values"), { recursive: true });
			await dry.setBytes("index-blobs:r:new", Buffer.from("never stored"));
			await dry.setBytes("index-blobs:r:kept", Buffer.from("after"));
			expect(await readdir(join(dir, "catalog.sqlite.values"), { recursive: true })).toEqual(files);
			expect(await dry.getBytes("index-blobs:r:new")).toBeUndefined();
			expect(Buffer.from((await dry.getBytes("index-blobs:r:kept")) ?? []).toString()).toBe("before");
			await catalog.disconnect();
		} finally {
			await rm(dir, { recursive: true, force: true });
		}
	});
});
