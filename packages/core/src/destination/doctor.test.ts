import { describe, expect, it } from "vitest";
import { ManualClock } from "../host/clock.js";
import { MemoryDestination } from "../testing/memory-destination.js";
import { proveProviderLocks } from "./doctor.js";

describe("proveProviderLocks", () => {
	it("proves a store's own locks by a canary it must refuse to delete", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const honest = new MemoryDestination(clock, { enforcedByProvider: true });
		const finding = await proveProviderLocks(honest, clock.now());
		expect(finding).toMatchObject({ check: "Object Lock", status: "ok" });
		const [canary] = [...honest.objects.keys()];
		expect(canary).toMatch(/^doctor\/lock-probe-/);
		expect(honest.objects.get(canary ?? "")).toHaveLength(1);
	});

	it("fails a store that says it enforces locks and deletes a locked version", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		// The raw store under the emulation: it keeps lock records and deletes whatever it is told.
		const liar = new MemoryDestination(clock, { enforcedByProvider: true }).store;
		const finding = await proveProviderLocks(liar, clock.now());
		expect(finding.status).toBe("fail");
		expect(finding.detail).toMatch(
			/^the store says it enforces Object Lock \(enforcedByProvider\) but deleted a version locked until 2030-01-02T00:00:00\.000Z/,
		);
		expect(liar.objects.size).toBe(0);
	});
});

describe("proveProviderLocks with a key that may not delete", () => {
	it("proves nothing from a refusal that any delete would get", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new MemoryDestination(clock, { enforcedByProvider: true }).store;
		// No locks at all, and a key that deletes nothing: every delete is refused alike.
		const noDeletes = Object.assign(Object.create(store) as typeof store, {
			deleteVersion: async () => {
				throw Object.assign(new Error("AccessDenied"), { code: "LOCKED" });
			},
		});
		const finding = await proveProviderLocks(noDeletes, clock.now());
		expect(finding.status).toBe("unproven");
		expect(finding.detail).toMatch(/^this key could not write and delete an unlocked canary/);
	});
});
