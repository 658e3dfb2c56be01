import { join } from "node:path";
import { type Destination, KEY_PREFIX, type RetentionConfig } from "@holdfast/core";
import { scheduleOf } from "@holdfast/plugin-retention-planner";
import { afterAll, beforeAll, describe, it, vi } from "vitest";
import { S3Destination } from "../packages/plugin-b2/src/s3-destination.js";
import { s3, TEST_ENV, uniqueBucket } from "../packages/plugin-b2/src/test-support/s3-subject.js";
import {
	type AttackOutcome,
	attackAndRestore,
	type ExpectedSnapshot,
	KnownLocks,
	ProvenViews,
	unchangedStore,
} from "./support/attacker.js";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { ChurningFolder, prng } from "./support/world.js";

/**
 * Tiered retention on the real S3 server, where the store itself holds the locks: fifteen
 * simulated days of runs every 12 hours, tiers compressed to fit (base 1 day, the first
 * backup of each week 4, of each month 10, of each year 20), every strategy. After every run
 * and at a random instant before it, the attacker deletes what is unlocked and every snapshot
 * in its window must restore; `check` finds no gap. The clock runs ahead
 * of real time, as the store refuses a retain-until in the past.
 */
const COMPRESSED: RetentionConfig = {
	days: 1,
	mode: "compliance",
	tiers: [
		{ every: "week", days: 4 },
		{ every: "month", days: 10 },
		{ every: "year", days: 20 },
	],
};
const RUNS = 30;

const cleanups: (() => Promise<void>)[] = [];
/** Lock extensions asked of each bucket (the destination's description ends with it). */
const lockCalls = new Map<string, number>();
/** Each world's locks the attacker read, forgotten for a version whose lock is being extended. */
const knownLocks: KnownLocks[] = [];
beforeAll(() => {
	const original = S3Destination.prototype.extendLock;
	vi.spyOn(S3Destination.prototype, "extendLock").mockImplementation(async function (this: S3Destination, ...args) {
		for (const locks of knownLocks) locks.forget(args[0], args[1]);
		const bucket = this.description.slice(this.description.indexOf(":") + 1);
		lockCalls.set(bucket, (lockCalls.get(bucket) ?? 0) + 1);
		return original.apply(this, args);
	});
});
afterAll(async () => {
	vi.restoreAllMocks();
	for (const cleanup of cleanups) await cleanup();
});

async function storedBytes(destination: Destination): Promise<number> {
	let bytes = 0;
	for (const prefix of [KEY_PREFIX.data, KEY_PREFIX.index, KEY_PREFIX.snapshots]) {
		for await (const version of destination.listVersions(prefix)) bytes += version.size;
	}
	return bytes;
}

// The strategies run side by side (each with its own bucket and harness): both wait on the store. They
// talk to the server directly: B2's header rules are held by the other S3 tests, which pass the same
// requests through the strict proxy (the two-hourly simulation, kill points, fault schedules); here each
// of some 200 sequential requests a run would wait twice more on this busy process, where the proxy runs.
describe.skipIf(!s3)("tiered retention on the real store's locks", () => {
	it.concurrent.for(["extend", "reinclude"] as const)(
		"fifteen days every 12 h, tiers of 1/4/10/20 days, %s",
		{ timeout: 1_200_000 },
		async (strategy, { expect }) => {
			const bucket = uniqueBucket("tiers");
			const calls = () => lockCalls.get(bucket) ?? 0;
			const start = new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 3_600_000);
			const began = Date.now();
			const harness: Harness = await createHarness({
				// No grooming: the simulated clock runs ahead of the store's, which still holds locks the clock saw end.
				plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-b2", "@holdfast/plugin-retention-planner"],
				env: TEST_ENV(),
				start: start.toISOString(),
				sets: (dir) => ({
					main: setConfig(dir, {
						destination: { type: "b2", bucket, endpoint: s3?.endpoint as string },
						retention: COMPRESSED,
						schedule: { every: "12h" },
						planner: { strategy, missedRuns: 0 },
					}),
				}),
			});
			cleanups.push(() => harness.close());
			const h = harness;
			await h.engine.init();
			const folder = new ChurningFolder(join(h.dir, "src"), { files: 6, fileBytes: 2048, seed: 23 });
			await folder.create();
			const schedule = scheduleOf({ every: "12h" });
			const random = prng(9);
			const expected: ExpectedSnapshot[] = [];
			const outcomes: AttackOutcome[] = [];
			const gaps: string[] = [];
			const tiers = new Map<string, number>();
			const destination = () => h.engine.destinationFor("main", h.engine.resolveSet("main").set);
			// Between two runs nothing is written, so views with the same surviving versions and locks restore alike.
			const proven = new ProvenViews();
			// What the attacks see until the next write: read once, however many instants attack it.
			const bytes = new Map<string, Promise<Uint8Array>>();
			// Each version's lock is read once (again after an extension), not at every write: a HEAD apiece.
			const locks = new KnownLocks();
			knownLocks.push(locks);
			let store = unchangedStore(destination(), bytes, locks);
			const attack = async (at: Date) => outcomes.push(await attackAndRestore(store, "correct horse", expected, at, proven));
			let at = start;
			for (let run = 0; run < RUNS; run++, at = schedule?.next(at) as Date) {
				h.clock.set(at);
				await folder.churn(run === 0 ? 0 : 1);
				const snapshot = (await h.engine.backup()).snapshot?.snapshot;
				if (!snapshot) throw new Error(`run ${run}: no snapshot`);
				const tier = snapshot.retention.tier ?? "base";
				tiers.set(tier, (tiers.get(tier) ?? 0) + 1);
				expected.push({ time: snapshot.time, protectUntil: new Date(snapshot.protectUntil), files: folder.expected("src") });
				store = unchangedStore(destination(), bytes, locks);
				// Nothing is written until the next run: check, the attack right after this run and the one at a
				// random instant before the next read the same store, so they run side by side (each waits on the
				// store, one request at a time). The attacks stay in order: the second reuses a view the first proved.
				const next = schedule?.next(at) as Date;
				const before = run < RUNS - 1 ? new Date(at.getTime() + random() * (next.getTime() - at.getTime())) : undefined;
				const checked = h.engine.check(undefined, { readDataPercent: 0 }).then((report) => {
					for (const gap of report.immutability.gaps) gaps.push(`${at.toISOString()}: ${gap.snapshot.slice(0, 12)} ${gap.key}`);
				});
				await Promise.all([checked, attack(at).then(() => before && attack(before))]);
				if (run % 10 === 9) {
					console.log(
						`S3 tiers ${strategy}, run ${run + 1}: stored ${await storedBytes(destination())} B, lock calls ${calls()}`,
					);
				}
			}
			const failures = outcomes.flatMap((o) => o.failures.map((f) => `${o.at.toISOString()}: ${f}`));
			console.log(
				`S3 tiers ${strategy}: runs by tier ${JSON.stringify(Object.fromEntries(tiers))}; ${outcomes.length} attacks, ` +
					`${outcomes.reduce((n, o) => n + o.restored, 0)} restores, ${failures.length} failed, ${gaps.length} gaps; ` +
					`stored ${await storedBytes(destination())} B, lock calls ${calls()}; ${Date.now() - began} ms`,
			);
			expect(failures.slice(0, 10)).toEqual([]);
			expect(gaps.slice(0, 10)).toEqual([]);
			for (const outcome of outcomes) expect(outcome.restored).toBe(outcome.inWindow);
			// The first run opens the year; fifteen days open at least two more weeks.
			expect(tiers.get("year")).toBe(1);
			expect(tiers.get("week") ?? 0).toBeGreaterThanOrEqual(2);
			// The year's snapshot outlives every daily: more in the window than the base's two a day would allow.
			expect(Math.max(...outcomes.map((o) => o.restored))).toBeGreaterThan(4);
			if (strategy === "extend") expect(calls()).toBeGreaterThan(0);
		},
	);
});
