import { describe, expect, it } from "vitest";
import { ManualClock } from "../host/clock.js";
import { isHoldfastError } from "../host/errors.js";
import { MemoryStore } from "../testing/memory-destination.js";
import { composeDestination } from "./compose.js";
import type { Destination, ListOptions, ObjectVersion } from "./destination.js";
import { RetryBudget } from "./faults.js";
import { RetryingDestination } from "./retry.js";

const reset = () => Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
const lock = { mode: "compliance" as const, until: new Date("2030-02-01T00:00:00Z") };

/** A fast budget: tests wait milliseconds between attempts, and count attempts rather than time. */
function retrying(store: Destination, budgetMs = 60_000, now?: () => number): RetryingDestination {
	return new RetryingDestination(
		store,
		new RetryBudget(store.description, { budgetMs, baseDelayMs: 1, maxDelayMs: 2, ...(now ? { now } : {}) }),
	);
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
	const out: T[] = [];
	for await (const item of items) out.push(item);
	return out;
}

describe("the retry layer", () => {
	it("repeats a get whose connection dropped until the store answers, and passes absence through at once", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new MemoryStore(clock, { enforcedByProvider: true });
		await store.put("data/a", Buffer.from("whole body"), lock);
		let gets = 0;
		const get = store.get.bind(store);
		store.get = async (key, options) => {
			gets++;
			if (gets <= 3) throw reset();
			return get(key, options);
		};
		const destination = retrying(store);
		expect(Buffer.from(await destination.get("data/a")).toString()).toBe("whole body");
		expect(gets).toBe(4);

		gets = 10;
		await expect(destination.get("data/missing")).rejects.toMatchObject({ code: "NOT_FOUND" });
		expect(gets).toBe(11);
	});

	it("resumes a listing cut off midway after the last key it had whole, yielding each entry once: never a shorter listing", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new MemoryStore(clock, { enforcedByProvider: true });
		for (const key of ["index/a", "index/b", "index/c", "index/d"]) await store.put(key, Buffer.from(key), lock);
		await store.put("index/b", Buffer.from("second version"), lock);
		const expected = await collect(store.listVersions("index/"));
		const listVersions = store.listVersions.bind(store);
		const starts: (string | undefined)[] = [];
		store.listVersions = (prefix: string, options?: ListOptions) =>
			(async function* () {
				starts.push(options?.startAfter);
				let yielded = 0;
				for await (const version of listVersions(prefix)) {
					if (options?.startAfter !== undefined && version.key <= options.startAfter) continue;
					// The first two listings drop after three entries.
					if (starts.length <= 2 && yielded === 3) throw reset();
					yielded++;
					yield version;
				}
			})();
		const listed = await collect(retrying(store).listVersions("index/"));
		expect(listed.map((v: ObjectVersion) => `${v.key} ${v.versionId}`)).toEqual(expected.map((v) => `${v.key} ${v.versionId}`));
		// a, both versions of b, then the fault: only a is known whole (b may have more versions).
		// Then b's versions again (skipped) and c: b is whole. Then c again (skipped) and d.
		expect(starts).toEqual([undefined, "index/a", "index/b"]);
	});

	it("starts a listing over from its first entry when the store ignores where to start, skipping what it yielded", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new MemoryStore(clock, { enforcedByProvider: true });
		for (const key of ["data/a", "data/b", "data/c"]) await store.put(key, Buffer.from(key), lock);
		const list = store.list.bind(store);
		let listings = 0;
		store.list = (prefix) =>
			(async function* () {
				listings++;
				let yielded = 0;
				for await (const object of list(prefix)) {
					if (listings === 1 && yielded === 2) throw reset();
					yielded++;
					yield object;
				}
			})();
		const listed = await collect(retrying(store).list("data/"));
		expect(listed.map((o) => o.key)).toEqual(["data/a", "data/b", "data/c"]);
		expect(listings).toBe(2);
	});

	it("fails a listing that outlasts the budget as unreachable, in one line naming the store and the call", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new MemoryStore(clock, { enforcedByProvider: true });
		await store.put("snapshots/a", Buffer.from("a"), lock);
		let elapsed = 0;
		store.list = () =>
			(async function* () {
				elapsed += 400;
				yield* [];
				throw reset();
			})();
		const error = await collect(retrying(store, 1000, () => elapsed).list("snapshots/")).catch((e: unknown) => e);
		expect(isHoldfastError(error, "UNREACHABLE"), String(error)).toBe(true);
		expect((error as Error).message).toMatch(/^mem.* is unreachable: list snapshots\/ kept failing for [\d.]+ s \(ECONNRESET: /);
		expect((error as Error).message).not.toContain("\n");
	});

	it("takes a delete whose answer was lost, then finds the version gone, as done", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new MemoryStore(clock, { enforcedByProvider: true });
		const { versionId } = await store.put("data/a", Buffer.from("x"));
		const deleteVersion = store.deleteVersion.bind(store);
		let deletes = 0;
		store.deleteVersion = async (key, id) => {
			deletes++;
			await deleteVersion(key, id);
			// Deleted on the store, but the answer never arrived.
			if (deletes === 1) throw reset();
		};
		await retrying(store).deleteVersion("data/a", versionId);
		expect(deletes).toBe(2);
		expect(await store.head("data/a", versionId)).toBeUndefined();
		// Without a lost answer before it, a missing version is still an error.
		await expect(retrying(store).deleteVersion("data/a", versionId)).rejects.toMatchObject({ code: "NOT_FOUND" });
	});

	it("gives the store opened with another key the same layer and the same budget", () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new MemoryStore(clock, { enforcedByProvider: true });
		const groomKey = new MemoryStore(clock, { enforcedByProvider: true });
		Object.assign(store, { withKey: () => groomKey });
		const destination = composeDestination(store, { clock, retryBudgetMs: 5000 }) as RetryingDestination;
		const keyed = destination.withKey("groom") as RetryingDestination;
		expect(keyed).toBeInstanceOf(RetryingDestination);
		expect(keyed.store).toBe(groomKey);
		expect(keyed.budget).toBe(destination.budget);
		expect(destination.budget.budgetMs).toBe(5000);
	});

	it("runs a doctor whose check met a transient fault again from the start, and passes its findings on", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = new MemoryStore(clock, { enforcedByProvider: true });
		let runs = 0;
		Object.assign(store, {
			doctor: async () => {
				runs++;
				if (runs === 1)
					throw Object.assign(new Error("Please reduce your request rate."), { $metadata: { httpStatusCode: 503 } });
				return [{ check: "bucket", status: "ok", detail: "exists" }];
			},
		});
		const findings = await retrying(store).doctor?.({ retentionDays: 30, mode: "compliance" });
		expect(findings).toEqual([{ check: "bucket", status: "ok", detail: "exists" }]);
		expect(runs).toBe(2);
	});

	it("stops at the attempts the store asks for", async () => {
		const clock = new ManualClock("2030-01-01T00:00:00Z");
		const store = Object.assign(new MemoryStore(clock, { enforcedByProvider: true }), { maxAttempts: 2 });
		let heads = 0;
		store.head = async () => {
			heads++;
			throw reset();
		};
		const error = await composeDestination(store, { clock })
			.head("k")
			.catch((e: unknown) => e);
		expect(isHoldfastError(error, "UNREACHABLE"), String(error)).toBe(true);
		expect(heads).toBe(2);
	});
});
