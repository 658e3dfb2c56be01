import { describe, expect, it } from "vitest";
import { ManualClock } from "../host/clock.js";
import { MemoryStore } from "../testing/memory-destination.js";
import { composeDestination } from "./compose.js";
import { EmulatedLocks, emulateLocks } from "./lock-emulation.js";
import type { RetryingDestination } from "./retry.js";

const until = (iso: string) => new Date(iso);

describe("lock emulation", () => {
	it("refuses what Object Lock refuses, over a raw store that does as told", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new MemoryStore(clock);
		const { versionId } = await store.put("data/a", Buffer.from("x"), { mode: "compliance", until: until("2030-02-01") });
		// The raw store judges nothing: a locked version can be shortened and deleted.
		await store.extendLock("data/a", versionId, { mode: "governance", until: until("2030-01-15") });
		expect((await store.head("data/a", versionId))?.lock).toEqual({ mode: "governance", until: until("2030-01-15") });
		await store.deleteVersion("data/a", versionId);
		expect(await store.head("data/a", versionId)).toBeUndefined();

		const locked = composeDestination(store, { clock });
		expect((locked as RetryingDestination).store).toBeInstanceOf(EmulatedLocks);
		const { versionId: second } = await locked.put("data/b", Buffer.from("y"), {
			mode: "compliance",
			until: until("2030-02-01"),
		});
		await expect(locked.deleteVersion("data/b", second)).rejects.toMatchObject({ code: "LOCKED" });
		await expect(locked.extendLock("data/b", second, { mode: "compliance", until: until("2030-01-20") })).rejects.toThrow(
			/cannot be shortened/,
		);
		await expect(locked.extendLock("data/b", second, { mode: "governance", until: until("2030-03-01") })).rejects.toThrow(
			/compliance cannot become governance/,
		);
		await expect(locked.put("data/c", Buffer.from("z"), { mode: "compliance", until: until("2029-12-31") })).rejects.toThrow(
			/in the past/,
		);
		expect(store.calls.delete).toBe(1);
		expect((await store.head("data/b", second))?.lock?.until).toEqual(until("2030-02-01"));
		await expect(locked.deleteVersion("data/b", "nope")).rejects.toMatchObject({ code: "NOT_FOUND" });
	});

	it("lets a governance lock be bypassed, and deletes once the lock has passed", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const locked = emulateLocks(new MemoryStore(clock), clock);
		const g = await locked.put("k/g", Buffer.from("g"), { mode: "governance", until: until("2030-02-01") });
		await expect(locked.deleteVersion("k/g", g.versionId)).rejects.toMatchObject({ code: "LOCKED" });
		await locked.deleteVersion("k/g", g.versionId, { bypassGovernance: true });
		const c = await locked.put("k/c", Buffer.from("c"), { mode: "compliance", until: until("2030-02-01") });
		await expect(locked.deleteVersion("k/c", c.versionId, { bypassGovernance: true })).rejects.toMatchObject({
			code: "LOCKED",
		});
		clock.set(until("2030-02-01T00:00:01Z").getTime());
		await locked.deleteVersion("k/c", c.versionId);
		expect(await locked.head("k/c", c.versionId)).toBeUndefined();
	});

	it("keeps the latest date when one process extends a version many times at once", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const locked = emulateLocks(new MemoryStore(clock), clock);
		const { versionId } = await locked.put("data/a", Buffer.from("x"), { mode: "compliance", until: until("2030-02-01") });
		const day = (n: number) => new Date(Date.UTC(2030, 2, n));
		await Promise.all(
			Array.from({ length: 20 }, (_, i) =>
				locked.extendLock("data/a", versionId, { mode: "compliance", until: day(20 - i) }).catch(() => undefined),
			),
		);
		expect((await locked.head("data/a", versionId))?.lock?.until).toEqual(day(20));
	});

	it("emulates locks only for a store without Object Lock of its own, and composes only once", () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const native = new MemoryStore(clock, { enforcedByProvider: true });
		// A store with its own Object Lock gets the retry layer alone.
		expect((composeDestination(native, { clock }) as RetryingDestination).store).toBe(native);
		const once = composeDestination(new MemoryStore(clock), { clock });
		expect(composeDestination(once, { clock })).toBe(once);
		expect((once as RetryingDestination).store).toBeInstanceOf(EmulatedLocks);
		expect(once.capabilities.enforcedByProvider).toBe(false);
	});

	it("gives a store's other key the same emulation", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new MemoryStore(clock);
		const groomKey = new MemoryStore(clock);
		Object.assign(store, { withKey: () => groomKey });
		const keyed = emulateLocks(store, clock).withKey?.("groom");
		expect(keyed).toBeInstanceOf(EmulatedLocks);
		const { versionId } = await groomKey.put("k", Buffer.from("x"), { mode: "compliance", until: until("2030-02-01") });
		await expect(keyed?.deleteVersion("k", versionId)).rejects.toMatchObject({ code: "LOCKED" });
	});
});
