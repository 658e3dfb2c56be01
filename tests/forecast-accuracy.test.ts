import { join } from "node:path";
import { DAY_MS, EmulatedLocks, type Forecaster, type SetConfig, TOKENS } from "@holdfast/core";
import { B2_PRICES, scheduleOf } from "@holdfast/plugin-retention-planner";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { ChurningFolder } from "./support/world.js";

/**
 * The forecast is a model; this holds it to the real thing. A year of weekly backups under a
 * 90-day retention with 1 % of the data changing a week runs through the real engine, with
 * grooming after each backup, counting what it uploads, stores, puts, extends and deletes;
 * the forecast made before the first run must land within 15 % of each.
 */
let harness: Harness | undefined;
afterEach(async () => {
	vi.restoreAllMocks();
	await harness?.close();
	harness = undefined;
});

const START = "2030-01-06T02:00:00Z";
const FILES = 100;
const FILE_BYTES = 64 * 1024;

describe("the cost forecast against a simulated year", () => {
	it.each(["extend", "reinclude"] as const)(
		"%s: uploaded and stored bytes, PUTs, lock calls and deletes within 15 percent",
		async (strategy) => {
			const calls = { put: 0, extend: 0, delete: 0 };
			for (const [method, counter] of [
				["put", "put"],
				["extendLock", "extend"],
				["deleteVersion", "delete"],
			] as const) {
				const original = EmulatedLocks.prototype[method] as (...args: unknown[]) => Promise<unknown>;
				vi.spyOn(EmulatedLocks.prototype, method).mockImplementation(async function (this: EmulatedLocks, ...args: unknown[]) {
					calls[counter]++;
					return original.apply(this, args);
				} as never);
			}
			const set = (dir: string): SetConfig =>
				setConfig(dir, {
					destination: { type: "fs", path: `${dir}/repo`, lockExtension: true },
					retention: { days: 90, mode: "compliance" },
					schedule: { every: "7d" },
					planner: { strategy, missedRuns: 0 },
					groom: { match: "retention", afterBackup: true, graceHours: 1 },
				});
			harness = await createHarness({ start: START, sets: (dir) => ({ main: set(dir) }) });
			const h = harness;
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

			calls.put = calls.extend = calls.delete = 0;
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
			const real = { uploaded, peakStored, put: calls.put, extend: calls.extend, delete: calls.delete };
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
		600_000,
	);
});
