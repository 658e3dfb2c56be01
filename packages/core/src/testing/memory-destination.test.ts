import { describe, expect, it } from "vitest";
import { ManualClock } from "../host/clock.js";
import { destinationConformance } from "./destination-conformance.js";
import { MemoryDestination, MemoryStore } from "./memory-destination.js";

destinationConformance("memory", async () => {
	const clock = new ManualClock("2030-01-01T00:00:00Z");
	return {
		destination: new MemoryDestination(clock),
		now: () => clock.now(),
		passTime: async (until) => clock.set(until.getTime() + 1),
		shortLockMs: 60_000,
	};
});

describe("memory store listings and reads", () => {
	const keysOf = async (store: MemoryStore, prefix = "") => {
		const keys: string[] = [];
		for await (const version of store.listVersions(prefix)) keys.push(version.key);
		return keys;
	};

	it("lists in key order after keys come and go, also when a test edits the objects directly", async () => {
		const store = new MemoryStore(new ManualClock("2030-01-01T00:00:00Z"));
		for (const key of ["data/b", "index/a", "data/a"]) await store.put(key, new Uint8Array([1]));
		expect(await keysOf(store)).toEqual(["data/a", "data/b", "index/a"]);
		const [only] = store.objects.get("data/b") ?? [];
		await store.deleteVersion("data/b", only?.versionId as string);
		expect(await keysOf(store)).toEqual(["data/a", "index/a"]);
		await store.deleteMarker("config");
		expect(await keysOf(store)).toEqual(["config", "data/a", "index/a"]);
		store.objects.delete("index/a");
		expect(await keysOf(store)).toEqual(["config", "data/a"]);
		store.objects.set("aa", [{ versionId: "x", body: Buffer.from("y"), lastModified: new Date(0) }]);
		expect(await keysOf(store)).toEqual(["aa", "config", "data/a"]);
		expect(await keysOf(store, "data/")).toEqual(["data/a"]);
	});

	it("lists by prefix exactly the keys that start with it, latest versions and all versions alike", async () => {
		const store = new MemoryStore(new ManualClock("2030-01-01T00:00:00Z"));
		for (const key of ["data/a", "data/ab", "data/b", "data0", "datb", "index/a", "keys/k"])
			await store.put(key, new Uint8Array([1]));
		await store.put("data/ab", new Uint8Array([2]));
		await store.deleteMarker("data/b");
		const latestOf = async (prefix: string) => {
			const keys: string[] = [];
			for await (const object of store.list(prefix)) keys.push(object.key);
			return keys;
		};
		expect(await keysOf(store, "data/")).toEqual(["data/a", "data/ab", "data/ab", "data/b", "data/b"]);
		expect(await latestOf("data/")).toEqual(["data/a", "data/ab"]);
		expect(await keysOf(store, "data/a")).toEqual(["data/a", "data/ab", "data/ab"]);
		expect(await keysOf(store, "data")).toEqual(["data/a", "data/ab", "data/ab", "data/b", "data/b", "data0"]);
		expect(await keysOf(store, "d")).toHaveLength(7);
		expect(await keysOf(store, "data/c")).toEqual([]);
		expect(await keysOf(store, "a")).toEqual([]);
		expect(await keysOf(store, "z")).toEqual([]);
		expect(await keysOf(store, "keys/k")).toEqual(["keys/k"]);
		expect(await keysOf(store, "")).toHaveLength(9);
	});

	it("reads return copies: a reader that decrypts in place leaves the stored bytes alone", async () => {
		const store = new MemoryStore(new ManualClock("2030-01-01T00:00:00Z"), {}, "memory:named");
		await store.put("k", new Uint8Array([1, 2, 3]));
		(await store.get("k")).fill(0);
		(await store.get("k", { range: { offset: 1, length: 2 } })).fill(0);
		expect([...(await store.get("k"))]).toEqual([1, 2, 3]);
		expect(store.description).toBe("memory:named");
	});
});
