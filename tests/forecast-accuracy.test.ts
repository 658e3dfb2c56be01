import { join } from "node:path";
import { DAY_MS, EmulatedLocks, type Forecaster, type SetConfig, TOKENS } from "@holdfast/core";
import { B2_PRICES, scheduleOf } from "@holdfast/plugin-retention-planner";
import { afterAll, beforeAll, describe, it, vi } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { memoryDestination } from "./support/memory-store-plugin.js";
import { ChurningFolder } from "./support/world.js";

/**
 * The forecast is a model; this holds it to the real thing. A year of weekly backups under a
 * 90-day retention with 1 % of the data changing a week runs through the real engine, with
 * grooming after each backup, counting what it uploads, stores, puts, extends and deletes;
 * the forecast made before the first run must land within 15 % of each.
 */
const harnesses: Harness[] = [];
/** Calls made of each world's repository, by the destination's description (which names its store). */
const calls = new Map<string, { put: number; extend: number; delete: number }>();
beforeAll(() => {
	for (const [method, counter] of [
		["put", "put"],
		["extendLock", "extend"],
		["deleteVersion", "delete"],
	] as const) {
		const original = EmulatedLocks.prototype[method] as (...args: unknown[]) => Promise<unknown>;
		vi.spyOn(EmulatedLocks.prototype, method).mockImplementation(async function (this: EmulatedLocks, ...args: unknown[]) {
			const counts = calls.get(this.description) ?? { put: 0, extend: 0, delete: 0 };
			counts[counter]++;
			calls.set(this.description, counts);
			return original.apply(this, args);
		} as never);
	}
});
afterAll(async () => {
	vi.restoreAllMocks();
	for (const h of harnesses) await h.close();
});

const START = "2030-01-06T02:00:00Z";
const FILES = 100;
const FILE_BYTES = 64 * 1024;

describe("the cost forecast against a simulated year", () => {
	// The strategies' worlds are independent (own folder, repository, clock): each runs while the other waits.
	it.concurrent.for(["extend", "reinclude"] as const)(
		"%s: uploaded and stored bytes, PUTs, lock calls and deletes within 15 percent",
		{ timeout: 600_000 },
		async (strategy, { expect }) => {
			const set = (dir: string): SetConfig =>
				setConfig(dir, {
					destination: memoryDestination(dir),
					retention: { days: 90, mode: "compliance" },
					schedule: { every: "7d" },
					planner: { strategy, missedRuns: 0 },
					groom: { match: "retention", afterBackup: true, graceHours: 1 },
				});
			// The forecast models the store's calls and bytes, which the memory store counts as a folder would.
			const h = await createHarness({ start: START, inMemory: true, memoryStore: true, sets: (dir) => ({ main: set(dir) }) });
			harnesses.push(h);
			const counted = () => calls.get(`memory:${h.dir}/repo`) ?? { put: 0, extend: 0, delete: 0 };
			await h.engine.init();
			const folder = new ChurningFolder(join(h.dir, "src"), { files: FILES, fileBytes: FILE_BYTES, seed: 3 });
			await folder.create();
			const forecaster = h.host.container.get<Forecaster>(TOKENS.Forecaster);
			const forecast = forecaster.forecast({
				start: new Date(START),
				periodDays: 364,
				weeklyChangeRate: 0.01,
				bytes: FILES * FILE_BYTES,
				packBytes: 16 * 1024 * 1024,
				set: h.engine.resolveSet("main").set,
				prices: B2_PRICES,
			});
			const model = forecast.strategies.find((s) => s.strategy === strategy);
			if (!model) throw new Error(`no ${strategy} forecast`);

			const before = { ...counted() };
			const schedule = scheduleOf({ every: "7d" });
			let uploaded = 0;
			let peakStored = 0;
			let at = new Date(START);
			for (let run = 0; at.getTime() < new Date(START).getTime() + 364 * DAY_MS; run++, at = schedule?.next(at) as Date) {
				h.clock.set(at);
				await folder.churn(run === 0 ? 0 : 1);
				const result = await h.engine.backup();
				uploaded += result.summary.bytes.uploaded;
				let stored = 0;
				for await (const version of h.engine.destinationFor("main", h.engine.resolveSet("main").set).listVersions("")) {
					if (!version.isDeleteMarker) stored += version.size;
				}
				peakStored = Math.max(peakStored, stored);
			}
			const after = counted();
			const real = {
				uploaded,
				peakStored,
				put: after.put - before.put,
				extend: after.extend - before.extend,
				delete: after.delete - before.delete,
			};
			const predicted = {
				uploaded: model.uploadBytes,
				peakStored: model.peakStoredBytes,
				put: model.putCalls,
				extend: model.lockCalls,
				delete: model.deleteCalls,
			};
			console.log(`${strategy}: real ${JSON.stringify(real)}; forecast ${JSON.stringify(predicted)}`);
			for (const key of Object.keys(real) as (keyof typeof real)[]) {
				const [r, p] = [real[key], predicted[key]];
				expect(Math.abs(p - r), `${key}: forecast ${p}, real ${r}`).toBeLessThanOrEqual(Math.max(2, 0.15 * r));
			}
		},
	);
});
