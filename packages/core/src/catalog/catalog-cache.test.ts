import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { openCatalog } from "./catalog.js";
import { CATALOG_BYTES_TAG, CATALOG_PACKED_TAG, CATALOG_VALUE_TAG, CatalogCache, isRecord } from "./catalog-cache.js";

const anything = (value: unknown): value is Record<string, unknown> => isRecord(value);

async function fixture(uri = "memory://") {
	const catalog = await openCatalog(uri, "/");
	const damaged: string[] = [];
	const key = randomBytes(32);
	return { catalog, key, damaged, cache: new CatalogCache(catalog, key, (k) => damaged.push(k)) };
}

/** A key that differs from `key` whatever its bytes: setting a byte to 1 left it equal one time in 256. */
function anotherKey(key: Buffer): Buffer {
	const other = Buffer.from(key);
	other[0] = (other[0] as number) ^ 0xff;
	return other;
}

describe("CatalogCache", () => {
	it("gives back what it sealed", async () => {
		const { cache, damaged } = await fixture();
		await cache.set("index:r:a", { packs: [1, 2] });
		expect(await cache.get("index:r:a", anything)).toEqual({ packs: [1, 2] });
		expect(damaged).toEqual([]);
	});

	it("treats a changed value, a value moved to another key, and another repository's value as never cached", async () => {
		const { catalog, cache, key, damaged } = await fixture();
		await cache.set("file:r:a", { s: 1 });
		const sealed = (await catalog.get("file:r:a")) as { t: string; m: string; j: string };
		await catalog.set("file:r:b", sealed);
		await catalog.set("file:r:c", { ...sealed, j: JSON.stringify({ s: 2 }) });
		const other = new CatalogCache(catalog, anotherKey(key));
		await other.set("file:r:d", { s: 1 });
		expect(await cache.get("file:r:a", anything)).toEqual({ s: 1 });
		expect(await cache.get("file:r:b", anything)).toBeUndefined();
		expect(await cache.get("file:r:c", anything)).toBeUndefined();
		expect(await cache.get("file:r:d", anything)).toBeUndefined();
		// Told once, at the first: a damaged catalog is one warning, not one per value.
		expect(damaged).toEqual(["file:r:b"]);
	});

	it("misses quietly on values of an older layout, and rejects a verified value of the wrong shape", async () => {
		const { catalog, cache, damaged } = await fixture();
		await catalog.set("tree:r:a", { nodes: [] });
		await catalog.set("tree:r:b", { t: "hf-cache/0", m: "", j: "{}" });
		expect(await cache.get("tree:r:a", anything)).toBeUndefined();
		expect(await cache.get("tree:r:b", anything)).toBeUndefined();
		expect(damaged).toEqual([]);
		await cache.set("tree:r:c", [1]);
		expect(await cache.get("tree:r:c", anything)).toBeUndefined();
		expect(damaged).toEqual(["tree:r:c"]);
		expect(CATALOG_VALUE_TAG).toBe("hf-cache/1");
	});
});

describe("CatalogCache, a tree kept compressed", () => {
	const tree = {
		nodes: Array.from({ length: 200 }, (_, i) => ({
			name: `f${i}.txt`,
			type: "file",
			size: 1000 + i,
			mtime: String(1795880226689346206n + BigInt(i)),
			content: [randomBytes(32).toString("hex")],
		})),
	};
	const json = Buffer.from(JSON.stringify(tree));

	for (const uri of ["memory://", "sqlite://:memory:"]) {
		it(`keeps a tree's JSON in a quarter of its size or less and gives the tree back (${uri})`, async () => {
			const { catalog, cache, damaged } = await fixture(uri);
			const sealed = cache.sealJson("tree:r:a", json);
			expect(sealed.t).toBe(CATALOG_PACKED_TAG);
			expect(JSON.stringify(sealed).length).toBeLessThan(json.length / 2);
			await cache.setManySealed([{ key: "tree:r:a", value: sealed }]);
			expect(await cache.get("tree:r:a", anything)).toEqual(tree);
			// The row as the store keeps it is the compressed one.
			expect(String(await catalog.store.get(`holdfast:tree:r:a`)).length).toBeLessThan(json.length / 2);
			expect(damaged).toEqual([]);
		});
	}

	it("reads a damaged or moved compressed value as never cached, and still reads the plain layout", async () => {
		const { catalog, cache, damaged } = await fixture();
		const sealed = cache.sealJson("tree:r:a", json) as { t: string; m: string; z: string };
		const flipped = sealed.z.slice(0, 40) + (sealed.z[40] === "A" ? "B" : "A") + sealed.z.slice(41);
		await catalog.set("tree:r:b", { ...sealed, z: flipped });
		await catalog.set("tree:r:c", sealed);
		// The same text under the plain layout's tag: its MAC is over another tag.
		await catalog.set("tree:r:a", { t: CATALOG_VALUE_TAG, m: sealed.m, j: JSON.stringify(tree) });
		expect(await cache.get("tree:r:b", anything)).toBeUndefined();
		expect(await cache.get("tree:r:c", anything)).toBeUndefined();
		expect(await cache.get("tree:r:a", anything)).toBeUndefined();
		expect(damaged).toEqual(["tree:r:b"]);
		// What a catalog written before holds: the tree's JSON as it is.
		await cache.set("tree:r:d", tree);
		expect(((await catalog.get("tree:r:d")) as { t: string }).t).toBe(CATALOG_VALUE_TAG);
		expect(await cache.get("tree:r:d", anything)).toEqual(tree);
	});
});

describe.each([
	{ store: "a store without a bytes table (base64 through keyv)", uri: "memory://" },
	{ store: "SQLite", uri: "sqlite://:memory:" },
])("CatalogCache byte values in $store", ({ uri }) => {
	it("gives back the bytes it sealed, and misses on a key never set", async () => {
		const { cache, damaged } = await fixture(uri);
		const value = randomBytes(1000);
		await cache.setBytes("index-blobs:r:a", value);
		expect(Buffer.from((await cache.getBytes("index-blobs:r:a")) as Uint8Array)).toEqual(value);
		expect(await cache.getBytes("index-blobs:r:b")).toBeUndefined();
		expect(damaged).toEqual([]);
	});

	it("treats another repository's bytes as damage, told once", async () => {
		const { catalog, cache, key, damaged } = await fixture(uri);
		const other = new CatalogCache(catalog, anotherKey(key));
		await other.setBytes("index-blobs:r:a", randomBytes(64));
		await other.setBytes("index-blobs:r:b", randomBytes(64));
		expect(await cache.getBytes("index-blobs:r:a")).toBeUndefined();
		expect(await cache.getBytes("index-blobs:r:b")).toBeUndefined();
		expect(damaged).toEqual(["index-blobs:r:a"]);
		expect(Buffer.from((await other.getBytes("index-blobs:r:a")) as Uint8Array)).toHaveLength(64);
	});
});

describe("CatalogCache byte values in a store without a bytes table", () => {
	it("misses on changed bytes, and quietly on a value of another layout", async () => {
		const { catalog, cache, damaged } = await fixture();
		await cache.setBytes("index-blobs:r:a", Buffer.from("original bytes"));
		const sealed = (await catalog.get("index-blobs:r:a")) as { t: string; m: string; b: string };
		expect(sealed.t).toBe(CATALOG_BYTES_TAG);
		await catalog.set("index-blobs:r:a", { ...sealed, b: Buffer.from("changed bytes!").toString("base64") });
		await catalog.set("index-blobs:r:old", [{ count: 0, ids: "", numbers: "", odd: [] }]);
		expect(await cache.getBytes("index-blobs:r:old")).toBeUndefined();
		expect(damaged).toEqual([]);
		expect(await cache.getBytes("index-blobs:r:a")).toBeUndefined();
		expect(damaged).toEqual(["index-blobs:r:a"]);
	});
});
