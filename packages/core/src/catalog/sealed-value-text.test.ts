import { randomBytes } from "node:crypto";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Keyv from "keyv";
import { describe, expect, it } from "vitest";
import { openCatalog } from "./catalog.js";
import { CatalogCache, isRecord } from "./catalog-cache.js";
import { SqliteKeyvStore } from "./sqlite-store.js";

const anything = (value: unknown): value is Record<string, unknown> => isRecord(value);
const VALUE = { name: 'a "quoted" name', sizes: [1, 2, 3] };

async function catalogPath(): Promise<string> {
	return join(await mkdtemp(join(tmpdir(), "holdfast-sealed-text-")), "catalog.sqlite");
}

/** A keyv catalog as holdfast opened it before this layout: keyv's JSON around the sealed value. */
function keyvJsonCatalog(path: string): Keyv {
	return new Keyv({ store: new SqliteKeyvStore(path), namespace: "holdfast" });
}

describe("sealed values in the catalog", () => {
	it("are stored with their JSON written once, not escaped inside keyv's JSON, and read back", async () => {
		const path = await catalogPath();
		const catalog = await openCatalog(`sqlite://${path}`, "/");
		const cache = new CatalogCache(catalog, randomBytes(32));
		await cache.set("tree:r:a", VALUE);
		const row = await (catalog.store as SqliteKeyvStore).get("holdfast:tree:r:a");
		expect(row?.startsWith("hf-cache/1\n\n")).toBe(true);
		expect(row?.endsWith(`\n${JSON.stringify(VALUE)}`)).toBe(true);
		expect(await cache.get("tree:r:a", anything)).toEqual(VALUE);
		await catalog.disconnect();
	});

	it("still reads the rows of a catalog written before (keyv's JSON), so an existing cache keeps its values", async () => {
		const path = await catalogPath();
		const key = randomBytes(32);
		const old = keyvJsonCatalog(path);
		await new CatalogCache(old, key).setMany([
			{ key: "file:r:a", value: VALUE },
			{ key: "file:r:b", value: { s: 2 } },
		]);
		const oldRow = await (old.store as SqliteKeyvStore).get("holdfast:file:r:a");
		expect(oldRow?.startsWith("{")).toBe(true);
		await old.disconnect();

		const catalog = await openCatalog(`sqlite://${path}`, "/");
		const damaged: string[] = [];
		const cache = new CatalogCache(catalog, key, (k) => damaged.push(k));
		expect(await cache.getMany(["file:r:a", "file:r:b"], anything)).toEqual([VALUE, { s: 2 }]);
		expect(damaged).toEqual([]);
		await catalog.disconnect();
	});

	it("are a miss for keyv's own parser (an older holdfast then reads the repository again)", async () => {
		const path = await catalogPath();
		const catalog = await openCatalog(`sqlite://${path}`, "/");
		await new CatalogCache(catalog, randomBytes(32)).set("file:r:a", VALUE);
		await catalog.disconnect();
		const old = keyvJsonCatalog(path);
		await expect(old.get("file:r:a")).rejects.toThrow();
		await old.disconnect();
	});

	it("keep a time to live, and a value past it is gone", async () => {
		const catalog = await openCatalog("memory://", "/");
		const sealed = new CatalogCache(catalog, randomBytes(32)).seal("k", VALUE);
		await catalog.set("live", sealed, 60_000);
		await catalog.set("past", sealed, -1);
		expect(await catalog.get("live")).toEqual(sealed);
		expect(await catalog.get("past")).toBeUndefined();
	});

	it("leave other values, and a truncated row, to keyv's JSON and a miss", async () => {
		const path = await catalogPath();
		const catalog = await openCatalog(`sqlite://${path}`, "/");
		await catalog.set("plain", { t: "hf-cache/1", m: "x", j: "{}", extra: 1 });
		expect(await catalog.get("plain")).toEqual({ t: "hf-cache/1", m: "x", j: "{}", extra: 1 });
		await (catalog.store as SqliteKeyvStore).set("holdfast:cut", "hf-cache/1\n\nmac-without-json");
		expect(await catalog.get("cut")).toBeUndefined();
		await catalog.disconnect();
	});
});
