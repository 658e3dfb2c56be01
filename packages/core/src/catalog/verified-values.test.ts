import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { openCatalog } from "./catalog.js";
import { CatalogCache, isRecord } from "./catalog-cache.js";
import { VerifiedValues } from "./verified-values.js";

const anything = (value: unknown): value is Record<string, unknown> => isRecord(value);
const withPacks = (value: unknown): value is { packs: unknown[] } => isRecord(value) && Array.isArray(value.packs);

async function fixture(uri = "memory://") {
	const catalog = await openCatalog(uri, "/");
	const damaged: string[] = [];
	return { catalog, damaged, cache: new CatalogCache(catalog, randomBytes(32), (k) => damaged.push(k)) };
}

describe("values a catalog cache remembers", () => {
	it("are handed out again, frozen, while the store holds the same sealed value; not without `remember`", async () => {
		const { cache } = await fixture();
		await cache.set("index-head:r:a", { packs: [{ key: "data/1" }] });
		const first = await cache.get("index-head:r:a", anything, { remember: true });
		const again = await cache.get("index-head:r:a", anything, { remember: true });
		expect(again).toBe(first);
		expect(first).toEqual({ packs: [{ key: "data/1" }] });
		expect(Object.isFrozen(first)).toBe(true);
		expect(Object.isFrozen((first as { packs: object[] }).packs[0])).toBe(true);
		// A plain read parses its own copy, which its reader may change.
		const own = await cache.get("index-head:r:a", anything);
		expect(own).not.toBe(first);
		expect(Object.isFrozen(own)).toBe(false);
	});

	it("are verified again once the stored value changes: forged JSON under the old MAC does not verify", async () => {
		const { catalog, cache, damaged } = await fixture();
		await cache.set("snapshot:r:a", { packs: [1] });
		expect(await cache.get("snapshot:r:a", anything, { remember: true })).toEqual({ packs: [1] });
		const sealed = (await catalog.get("snapshot:r:a")) as { t: string; m: string; j: string };
		await catalog.set("snapshot:r:a", { ...sealed, j: JSON.stringify({ packs: [2] }) });
		expect(await cache.get("snapshot:r:a", anything, { remember: true })).toBeUndefined();
		expect(damaged).toEqual(["snapshot:r:a"]);
		// Dropped, then written again with other content: the new value, not the remembered one.
		await catalog.delete("snapshot:r:a");
		expect(await cache.get("snapshot:r:a", anything, { remember: true })).toBeUndefined();
		await new CatalogCache(catalog, Buffer.alloc(32)).set("snapshot:r:a", { packs: [3] });
		expect(await cache.get("snapshot:r:a", anything, { remember: true })).toBeUndefined();
		await cache.set("snapshot:r:a", { packs: [4] });
		expect(await cache.get("snapshot:r:a", anything, { remember: true })).toEqual({ packs: [4] });
	});

	it("are checked again by a reader asking with another shape check", async () => {
		const { cache, damaged } = await fixture();
		await cache.set("index-head:r:a", { created: "x" });
		expect(await cache.get("index-head:r:a", anything, { remember: true })).toEqual({ created: "x" });
		expect(await cache.get("index-head:r:a", withPacks, { remember: true })).toBeUndefined();
		expect(damaged).toEqual(["index-head:r:a"]);
	});

	it.each(["memory://", "sqlite://:memory:"])("as bytes (%s): the same bytes again, changed bytes a miss", async (uri) => {
		const { catalog, cache, damaged } = await fixture(uri);
		const value = randomBytes(256);
		await cache.setBytes("index-blobs:r:a", value);
		const first = await cache.getBytes("index-blobs:r:a", { remember: true });
		expect(Buffer.from(first as Uint8Array)).toEqual(value);
		expect(await cache.getBytes("index-blobs:r:a", { remember: true })).toBe(first);
		// Another repository's bytes written over ours: not ours, whatever was remembered.
		await new CatalogCache(catalog, randomBytes(32)).setBytes("index-blobs:r:a", value);
		expect(await cache.getBytes("index-blobs:r:a", { remember: true })).toBeUndefined();
		expect(damaged).toEqual(["index-blobs:r:a"]);
	});
});

describe("VerifiedValues", () => {
	it("keeps values up to its budget, and frees what it forgets", () => {
		const values = new VerifiedValues(10);
		const valid = () => true;
		values.remember("a", "mac", "body", { n: 1 }, valid);
		expect(values.get("a", "mac", "body", valid)).toEqual({ n: 1 });
		expect(values.get("a", "mac", "other", valid)).toBeUndefined();
		expect(values.get("a", "other", "body", valid)).toBeUndefined();
		// 3 + 4 characters are held; 7 more do not fit, so "b" is not kept.
		values.remember("b", "mac", "body", { n: 2 }, valid);
		expect(values.get("b", "mac", "body", valid)).toBeUndefined();
		values.forget("a");
		values.remember("b", "mac", "body", { n: 2 }, valid);
		expect(values.get("b", "mac", "body", valid)).toEqual({ n: 2 });
		const bytes = new Uint8Array([1, 2]);
		const big = new VerifiedValues(100);
		big.remember("c", new Uint8Array([9]), bytes, bytes);
		expect(big.get("c", new Uint8Array([9]), new Uint8Array([1, 2]))).toBe(bytes);
		expect(big.get("c", new Uint8Array([9]), new Uint8Array([1, 3]))).toBeUndefined();
	});
});
