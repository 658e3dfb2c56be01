import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type PluginDefinition, type SetConfig, type SnapshotRef, STAGE } from "@holdfast/core";
import { collectSnapshotObjects } from "@holdfast/core/testing";
import { afterEach, describe, expect, it } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { pseudoRandom } from "./support/trees.js";

let harness: Harness | undefined;
afterEach(async () => {
	await harness?.close();
	harness = undefined;
});

const DAY = 86_400_000;

function weekly(dir: string): SetConfig {
	return setConfig(dir, {
		destination: { type: "fs", path: join(dir, "repo"), lockExtension: true },
		retention: { days: 30, mode: "compliance", tiers: [{ every: "week", days: 90 }] },
		schedule: { every: "1d" },
		planner: { strategy: "extend", missedRuns: 0, slackDays: 5 },
	});
}

describe("retention tiers in the engine", () => {
	it("extend holds only what the week's snapshot uses for 90 days; a daily's own data keeps its 30", async () => {
		harness = await createHarness({ inMemory: true, start: "2030-06-04T02:00:00Z", sets: (dir) => ({ main: weekly(dir) }) });
		const h = harness;
		await h.engine.init();
		const src = join(h.dir, "src");
		const run = async (at: string) => {
			h.clock.set(new Date(at));
			const result = await h.engine.backup();
			return result.snapshot as SnapshotRef;
		};
		await writeFile(join(src, "a"), pseudoRandom(50_000, 1));
		const tuesday = await run("2030-06-04T02:00:00Z"); // the set's first: opens the week
		await writeFile(join(src, "b"), pseudoRandom(50_000, 2));
		const wednesday = await run("2030-06-05T02:00:00Z");
		await rm(join(src, "b"));
		await writeFile(join(src, "c"), pseudoRandom(50_000, 3));
		const thursday = await run("2030-06-06T02:00:00Z");
		const monday = await run("2030-06-10T02:00:00Z"); // opens the next week

		expect([tuesday, wednesday, thursday, monday].map((r) => r.snapshot.retention)).toEqual([
			{ days: 90, mode: "compliance", tier: "week" },
			{ days: 30, mode: "compliance" },
			{ days: 30, mode: "compliance" },
			{ days: 90, mode: "compliance", tier: "week" },
		]);

		const open = await h.engine.open();
		const packsOf = async (ref: SnapshotRef) => (await collectSnapshotObjects(open.repository, ref, [])).packs;
		const [tue, wed, thu, mon] = await Promise.all([tuesday, wednesday, thursday, monday].map(packsOf));
		const lockDays = (key: string, ref: SnapshotRef) =>
			((open.repository.index.lockUntil(key)?.getTime() ?? 0) - new Date(ref.snapshot.time).getTime()) / DAY;
		// b's pack: only Wednesday's daily used it, so it is locked for the daily's 30 days and the slack, no more.
		const onlyWednesday = [...(wed ?? [])].filter((k) => !tue?.has(k) && !thu?.has(k) && !mon?.has(k));
		expect(onlyWednesday.length).toBeGreaterThan(0);
		for (const key of onlyWednesday) expect(lockDays(key, wednesday)).toBeLessThanOrEqual(30 + 5);
		// c's pack, written by Thursday's daily, is used by Monday's week snapshot: extended to its 90 days.
		const thursdaysUsedMonday = [...(thu ?? [])].filter((k) => mon?.has(k) && !wed?.has(k));
		expect(thursdaysUsedMonday.length).toBeGreaterThan(0);
		for (const key of thursdaysUsedMonday) expect(lockDays(key, monday)).toBeGreaterThanOrEqual(90);
		const report = await h.engine.check(undefined, { readDataPercent: 0 });
		expect(report.immutability.gaps).toEqual([]);
	});

	it("the core refuses a plan that would protect a tier's snapshot for less than its tier", async () => {
		const shortener: PluginDefinition = {
			name: "shortener",
			version: "1.0.0",
			engine: "^0.1.0",
			activate(context) {
				// Late, after the planner: protect only the base 30 days, whatever the tier.
				context.hooks.plan.tap({ name: "shortener", stage: STAGE.REPORT }, (plan, run) => {
					const until = new Date(run.startedAt.getTime() + 30 * DAY);
					return { ...plan, protectUntil: until, lock: { ...plan.lock, until } };
				});
			},
		};
		harness = await createHarness({
			inMemory: true,
			start: "2030-06-04T02:00:00Z",
			plugins: [
				"@holdfast/plugin-fs-source",
				"@holdfast/plugin-fs-destination",
				"@holdfast/plugin-retention-planner",
				"shortener",
			],
			extraBuiltins: new Map([["shortener", shortener]]),
			sets: (dir) => ({ main: weekly(dir) }),
		});
		await writeFile(join(harness.dir, "src/a"), "a");
		await harness.engine.init();
		await expect(harness.engine.backup()).rejects.toThrow("protected for less than its retention tier");
		expect(await harness.engine.snapshots()).toEqual([]);
	});
});
