import { DAY_MS, EmulatedLocks, type LockMode, type ObjectLock } from "@holdfast/core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { memoryDestination } from "./support/memory-store-plugin.js";
import { runWeek, trueLocks } from "./support/scenario.js";

const START = new Date("2030-01-06T02:00:00Z");
let harness: Harness | undefined;
afterEach(async () => {
	vi.restoreAllMocks();
	await harness?.close();
	harness = undefined;
});

/** Every extension asked of the destination, checked never to move a lock backwards. */
function watchExtensions() {
	const calls: { key: string; from?: Date; to: Date }[] = [];
	const original = EmulatedLocks.prototype.extendLock;
	vi.spyOn(EmulatedLocks.prototype, "extendLock").mockImplementation(async function (
		this: EmulatedLocks,
		key,
		versionId,
		lock: ObjectLock,
	) {
		const before = (await this.head(key, versionId))?.lock?.until;
		calls.push({ key, ...(before ? { from: before } : {}), to: lock.until });
		return original.call(this, key, versionId, lock);
	});
	return calls;
}

function harnessFor(strategy: "extend" | "reinclude", missedRuns = 0, mode: LockMode = "compliance") {
	// The planner's promise, not the folder, is under test: the memory store's locks follow the same emulation.
	return createHarness({
		inMemory: true,
		memoryStore: true,
		start: START.toISOString(),
		sets: (dir) => ({
			main: setConfig(dir, {
				destination: memoryDestination(dir, strategy === "extend"),
				retention: { days: 90, mode },
				schedule: { every: "7d" },
				planner: { strategy: "auto", missedRuns, slackDays: 14 },
			}),
		}),
	});
}

describe("look-ahead planner over a year of weekly runs, 90-day retention", () => {
	it("re-include: every file of the latest snapshot stays locked past the next run; day 84 re-includes, day 77 does not", async () => {
		harness = await harnessFor("reinclude");
		await harness.engine.init();
		const reincludedOn = new Map<number, string[]>();
		for (let week = 0; week <= 52; week++) {
			const result = await runWeek(harness, week, START);
			expect(result.plan.strategy).toBe("reinclude");
			reincludedOn.set(
				week,
				result.plan.notes.map((n) => n.split(":")[0]?.split("/").pop() as string),
			);
			const nextRun = new Date(START.getTime() + (week + 1) * 7 * DAY_MS);
			for (const [key, until] of await trueLocks(harness, result.snapshot as never)) {
				expect(until, `${key} after week ${week}`).toBeDefined();
				expect((until as Date).getTime(), `${key} after week ${week}`).toBeGreaterThanOrEqual(nextRun.getTime());
			}
		}
		expect(reincludedOn.get(11)).not.toContain("static.txt"); // day 77
		expect(reincludedOn.get(12)).toContain("static.txt"); // day 84: its lock ends day 90, before the day-91 run
		// And again one retention period after its re-upload on day 84.
		expect(reincludedOn.get(24)).toContain("static.txt");
		expect(reincludedOn.get(23)).not.toContain("static.txt");
	});

	it("re-include with missedRuns 1 re-includes one run earlier (day 77)", async () => {
		harness = await harnessFor("reinclude", 1);
		await harness.engine.init();
		const notes: string[][] = [];
		for (let week = 0; week <= 12; week++) notes.push((await runWeek(harness, week, START)).plan.notes);
		expect(notes[10]?.some((n) => n.includes("static.txt"))).toBe(false);
		expect(notes[11]?.some((n) => n.includes("static.txt"))).toBe(true);
	});

	it("extend: every snapshot in its window has every object locked until its protect-until; no lock ever shortened", async () => {
		const extensions = watchExtensions();
		harness = await harnessFor("extend");
		await harness.engine.init();
		let extendedTotal = 0;
		for (let week = 0; week <= 52; week++) {
			const result = await runWeek(harness, week, START);
			expect(result.plan.strategy).toBe("extend");
			expect(result.summary.files.reincluded).toBe(0);
			extendedTotal += result.summary.objects.extended;
			const report = await harness.engine.check(undefined, { readDataPercent: 0 });
			expect(report.immutability.gaps, `gaps after week ${week}`).toEqual([]);
			expect(report.immutability.covered).toBe(report.immutability.snapshots);
			expect(report.immutability.snapshots).toBe(Math.min(week + 1, 13));
		}
		expect(extensions.length).toBe(extendedTotal);
		expect(extensions.length).toBeGreaterThan(0);
		for (const call of extensions)
			if (call.from) expect(call.to.getTime(), `${call.key} ${call.from.toISOString()}`).toBeGreaterThan(call.from.getTime());
		// Generations: locked to need + 14 days, an object needed every week is extended every third run, not weekly.
		const staticPackExtensions = new Map<string, number>();
		for (const call of extensions) staticPackExtensions.set(call.key, (staticPackExtensions.get(call.key) ?? 0) + 1);
		expect(Math.max(...staticPackExtensions.values())).toBeLessThanOrEqual(Math.ceil(53 / 3));
	});

	it("plans any date without writing anything", async () => {
		harness = await harnessFor("reinclude");
		await harness.engine.init();
		await runWeek(harness, 0, START);
		const planDay77 = await harness.engine.backup(undefined, { dryRun: true, at: new Date(START.getTime() + 77 * DAY_MS) });
		const planDay84 = await harness.engine.backup(undefined, { dryRun: true, at: new Date(START.getTime() + 84 * DAY_MS) });
		expect(planDay77.snapshot).toBeUndefined();
		expect(planDay77.summary.files.reincluded).toBe(0);
		expect(planDay84.summary.files.reincluded).toBe(3);
		expect(planDay84.plan.nextRun?.toISOString()).toBe(new Date(START.getTime() + 91 * DAY_MS).toISOString());
		expect((await harness.engine.snapshots()).length).toBe(1);
	});
});
