import { join } from "node:path";
import { scheduleOf } from "@holdfast/plugin-retention-planner";
import { afterAll, beforeAll, describe, it, vi } from "vitest";
import { S3Destination } from "../packages/plugin-b2/src/s3-destination.js";
import { B2StrictProxy } from "../packages/plugin-b2/src/test-support/b2-strict-proxy.js";
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
 * The attacker's test of the promise on the real S3 server, where the store itself holds the
 * locks: runs every two hours under a one-day retention for a day and a half, every strategy. The clock runs ahead
 * of real time (the store refuses a retain-until in the past, not one far ahead), and the
 * attacker's view takes each version's lock from the store's own HEAD.
 */
const cleanups: (() => Promise<void>)[] = [];
/** Each world's locks the attacker read, forgotten for a version whose lock is being extended. */
const knownLocks: KnownLocks[] = [];
beforeAll(() => {
	const original = S3Destination.prototype.extendLock;
	vi.spyOn(S3Destination.prototype, "extendLock").mockImplementation(async function (this: S3Destination, ...args) {
		for (const locks of knownLocks) locks.forget(args[0], args[1]);
		return original.apply(this, args);
	});
});
afterAll(async () => {
	vi.restoreAllMocks();
	for (const cleanup of cleanups) await cleanup();
});

// The strategies run side by side (each with its own bucket, proxy and harness): both wait on the store.
describe.skipIf(!s3)("every snapshot in its window restores from the real store's locks alone", () => {
	it.concurrent.for(["extend", "reinclude"] as const)(
		"runs every 2 h, one-day retention, %s",
		{ timeout: 600_000 },
		async (strategy, { expect }) => {
			const proxy = await new B2StrictProxy(s3?.endpoint as string).start();
			cleanups.push(() => proxy.stop());
			const bucket = uniqueBucket("invariant");
			const start = new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000 + 3_600_000);
			const began = Date.now();
			const harness: Harness = await createHarness({
				plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-b2", "@holdfast/plugin-retention-planner"],
				env: TEST_ENV(),
				start: start.toISOString(),
				sets: (dir) => ({
					main: setConfig(dir, {
						destination: { type: "b2", bucket, endpoint: proxy.endpoint },
						retention: { days: 1, mode: "compliance" },
						schedule: { every: "2h" },
						planner: { strategy, missedRuns: 0 },
					}),
				}),
			});
			cleanups.push(() => harness.close());
			const h = harness;
			await h.engine.init();
			const folder = new ChurningFolder(join(h.dir, "src"), { files: 6, fileBytes: 2048, seed: 11 });
			await folder.create();
			const schedule = scheduleOf({ every: "2h" });
			const random = prng(5);
			const expected: ExpectedSnapshot[] = [];
			const outcomes: AttackOutcome[] = [];
			const destination = () => h.engine.destinationFor("main", h.engine.resolveSet("main").set);
			const proven = new ProvenViews();
			// What the attacks see until the next write: read once, however many instants attack it.
			const bytes = new Map<string, Promise<Uint8Array>>();
			// Each version's lock is read once (again after an extension), not at every write: a HEAD apiece.
			const locks = new KnownLocks();
			knownLocks.push(locks);
			let store = unchangedStore(destination(), bytes, locks);
			const attack = async (at: Date) => outcomes.push(await attackAndRestore(store, "correct horse", expected, at, proven));
			let at = start;
			let previous: Date | undefined;
			for (let run = 0; run < 18; run++, at = schedule?.next(at) as Date) {
				if (previous) {
					await attack(new Date(previous.getTime() + random() * (at.getTime() - previous.getTime())));
					await attack(new Date(at.getTime() + 10 * 60_000));
				}
				h.clock.set(at);
				await folder.churn(run === 0 ? 0 : 1);
				const snapshot = (await h.engine.backup()).snapshot?.snapshot;
				store = unchangedStore(destination(), bytes, locks);
				if (!snapshot) throw new Error(`run ${run}: no snapshot`);
				expected.push({ time: snapshot.time, protectUntil: new Date(snapshot.protectUntil), files: folder.expected("src") });
				await attack(at);
				previous = at;
			}
			const failures = outcomes.flatMap((o) => o.failures.map((f) => `${o.at.toISOString()}: ${f}`));
			console.log(
				`S3, every 2 h, 1 day, ${strategy}: ${outcomes.length} attacks, ${outcomes.reduce((n, o) => n + o.restored, 0)} restores (${outcomes.reduce((n, o) => n + o.reused, 0)} from a view already restored), ${failures.length} failed, ${Date.now() - began} ms`,
			);
			expect(failures.slice(0, 10)).toEqual([]);
			// Twelve runs a day: from the second day on, 12 snapshots are in their window at once.
			expect(Math.max(...outcomes.map((o) => o.restored))).toBeGreaterThanOrEqual(12);
		},
	);
});
