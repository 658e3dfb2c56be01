import { join } from "node:path";
import { DAY_MS, EmulatedLocks, KEY_PREFIX, type ScheduleConfig, type SetConfig } from "@holdfast/core";
import { collectSnapshotObjects } from "@holdfast/core/testing";
import { scheduleOf } from "@holdfast/plugin-retention-planner";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type AttackOutcome, attackAndRestore, type ExpectedSnapshot, ProvenViews, unchangedStore } from "./attacker.js";
import { rememberCronRuns } from "./cron-memo.js";
import { createHarness, type Harness, setConfig } from "./harness.js";
import { memoryDestination } from "./memory-store-plugin.js";
import { ChurningFolder, prng } from "./world.js";

/**
 * The promise, tested the way an attacker would test it: after every run, at a random instant
 * between runs, and while the next run is starting, every version whose lock has ended is
 * deleted, the catalog is dropped, and every snapshot still in its window must restore
 * bit-exactly. Seeded, so a failure names an instant that can be replayed.
 *
 * The scenarios are listed here, together, and run from four test files by group, so that
 * vitest's workers run them side by side.
 */

type Strategy = "extend" | "reinclude";

interface Phase {
	/** From this run on. */
	readonly fromRun: number;
	readonly retentionDays?: number;
	readonly strategy?: Strategy;
}

/** Which test file runs the scenario. */
export type ScenarioGroup = "weekly" | "dst" | "hourly" | "changes";

interface Scenario {
	readonly name: string;
	readonly group: ScenarioGroup;
	readonly start: string;
	readonly schedule: ScheduleConfig;
	readonly retentionDays: number;
	readonly strategy: Strategy;
	readonly runs: number;
	readonly files: number;
	readonly changesPerRun: number;
	readonly missedRuns?: number;
	/** Scheduled runs that do not happen (the machine was off). */
	readonly skip?: readonly number[];
	readonly phases?: readonly Phase[];
	/**
	 * Stored data bytes over the unique bytes the window needs, at the end. Under extend the
	 * first backup's pack keeps the dead bytes of files changed since: copying its live blobs
	 * would double them until its lock ends (a retention period), which pays only once about
	 * half of it is dead, so a year of 1 % weekly churn ends near 1.35.
	 */
	readonly maxStoredRatio?: number;
	/**
	 * Where the repository lives: a memory store behind the core's lock emulation (the default:
	 * the same Object Lock rules, without a file and a lock record read back per version at every
	 * listing, which cost more than the rest of a run), or a folder, as `fs` destinations keep it.
	 */
	readonly store?: "memory" | "fs";
}

const SCENARIOS: Scenario[] = [
	{
		name: "weekly, 90 days, extend, 1 % churn",
		group: "weekly",
		start: "2030-01-06T02:00:00Z",
		schedule: { every: "7d" },
		retentionDays: 90,
		strategy: "extend",
		runs: 53,
		files: 100,
		changesPerRun: 1,
		maxStoredRatio: 1.4,
	},
	{
		name: "weekly, 90 days, reinclude, 1 % churn",
		group: "weekly",
		start: "2030-01-06T02:00:00Z",
		schedule: { every: "7d" },
		retentionDays: 90,
		strategy: "reinclude",
		runs: 53,
		files: 100,
		changesPerRun: 1,
		maxStoredRatio: 1.1,
	},
	{
		name: "daily cron across DST, 30 days, reinclude",
		group: "dst",
		start: "2030-03-10T01:00:00Z",
		schedule: { cron: "0 2 * * *", tz: "Europe/Berlin" },
		retentionDays: 30,
		strategy: "reinclude",
		runs: 45,
		files: 20,
		changesPerRun: 2,
	},
	{
		name: "daily cron across DST, 30 days, extend",
		group: "dst",
		start: "2030-10-10T01:00:00Z",
		schedule: { cron: "0 2 * * *", tz: "Europe/Berlin" },
		retentionDays: 30,
		strategy: "extend",
		runs: 45,
		files: 20,
		changesPerRun: 2,
	},
	{
		name: "monthly cron, 30 days, reinclude",
		group: "changes",
		start: "2030-01-01T00:00:00Z",
		schedule: { cron: "0 3 1 * *" },
		retentionDays: 30,
		strategy: "reinclude",
		runs: 8,
		files: 20,
		changesPerRun: 3,
		store: "fs",
	},
	{
		name: "hourly, 1 day, reinclude",
		group: "hourly",
		start: "2030-05-01T00:00:00Z",
		schedule: { every: "1h" },
		retentionDays: 1,
		strategy: "reinclude",
		runs: 60,
		files: 10,
		changesPerRun: 1,
	},
	{
		name: "hourly, 1 day, extend",
		group: "hourly",
		start: "2030-05-01T00:00:00Z",
		schedule: { every: "1h" },
		retentionDays: 1,
		strategy: "extend",
		runs: 60,
		files: 10,
		changesPerRun: 1,
	},
	{
		name: "weekly, 3000 days, extend",
		group: "weekly",
		start: "2030-01-06T02:00:00Z",
		schedule: { every: "7d" },
		retentionDays: 3000,
		strategy: "extend",
		runs: 8,
		files: 20,
		changesPerRun: 2,
		store: "fs",
	},
	{
		name: "weekly, retention 90→30 and reinclude→extend→reinclude",
		group: "changes",
		start: "2030-01-06T02:00:00Z",
		schedule: { every: "7d" },
		retentionDays: 90,
		strategy: "reinclude",
		runs: 45,
		files: 30,
		changesPerRun: 2,
		phases: [
			{ fromRun: 15, retentionDays: 30 },
			{ fromRun: 22, strategy: "extend" },
			{ fromRun: 32, strategy: "reinclude", retentionDays: 60 },
		],
	},
	{
		name: "weekly, 90 days, reinclude, two runs missed within missedRuns 2",
		group: "changes",
		start: "2030-01-06T02:00:00Z",
		schedule: { every: "7d" },
		retentionDays: 90,
		strategy: "reinclude",
		runs: 30,
		files: 30,
		changesPerRun: 2,
		missedRuns: 2,
		skip: [11, 12, 24, 25],
	},
];

let harness: Harness | undefined;

function setFor(dir: string, scenario: Scenario, phase: { retentionDays: number; strategy: Strategy }): SetConfig {
	return setConfig(dir, {
		destination: scenario.store === "fs" ? { type: "fs", path: `${dir}/repo`, lockExtension: true } : memoryDestination(dir),
		retention: { days: phase.retentionDays, mode: "compliance" },
		schedule: scenario.schedule,
		planner: { strategy: phase.strategy, missedRuns: scenario.missedRuns ?? 0 },
		groom: { match: "retention", afterBackup: true, graceHours: 1 },
	});
}

/** Registers the scenarios of one group (called from a test file as it is collected). */
export function describeInvariant(group: ScenarioGroup): void {
	let forgetCronRuns: (() => void) | undefined;
	beforeAll(() => {
		forgetCronRuns = rememberCronRuns();
	});
	afterAll(() => forgetCronRuns?.());
	afterEach(async () => {
		vi.restoreAllMocks();
		await harness?.close();
		harness = undefined;
	});
	describe("every snapshot in its window restores after an attacker deletes everything unlocked", () => {
		it.each(SCENARIOS.filter((s) => s.group === group))(
			"$name",
			async (scenario) => {
				const extendCalls = { count: 0 };
				const original = EmulatedLocks.prototype.extendLock;
				vi.spyOn(EmulatedLocks.prototype, "extendLock").mockImplementation(async function (this: EmulatedLocks, ...args) {
					extendCalls.count++;
					return original.apply(this, args);
				});
				let phase = { retentionDays: scenario.retentionDays, strategy: scenario.strategy };
				harness = await createHarness({
					start: scenario.start,
					inMemory: true,
					memoryStore: true,
					memoryCatalog: true,
					sets: (dir) => ({ main: setFor(dir, scenario, phase) }),
				});
				const h = harness;
				const password = "correct horse";
				await h.engine.init();
				const folder = new ChurningFolder(join(h.dir, "src"), { files: scenario.files, fileBytes: 4096, seed: 7 });
				await folder.create();
				const schedule = scheduleOf(scenario.schedule);
				const random = prng(42);
				const expected: ExpectedSnapshot[] = [];
				const outcomes: AttackOutcome[] = [];
				const proven = new ProvenViews();
				const destination = () => h.engine.destinationFor("main", h.engine.resolveSet("main").set);
				// What the attacks see until the next write: read once, however many instants attack it.
				const bytes = new Map<string, Promise<Uint8Array>>();
				let store = unchangedStore(destination(), bytes);
				let attackMs = 0;
				const attack = async (at: Date) => {
					const started = Date.now();
					outcomes.push(await attackAndRestore(store, password, expected, at, proven));
					attackMs += Date.now() - started;
				};
				let uploaded = 0;
				let renewed = 0;
				let at = new Date(scenario.start);
				let previous: Date | undefined;
				let lastHorizon = new Date(scenario.start);
				for (let run = 0; run < scenario.runs; run++, at = schedule?.next(at) as Date) {
					if (scenario.skip?.includes(run)) continue;
					const change = scenario.phases?.find((p) => p.fromRun === run);
					if (change) {
						phase = { retentionDays: change.retentionDays ?? phase.retentionDays, strategy: change.strategy ?? phase.strategy };
						await h.reconfigure({ main: setFor(h.dir, scenario, phase) });
						store = unchangedStore(destination(), bytes);
					}
					if (previous) {
						// A random instant since the last run, and the next run under way before it renewed anything.
						await attack(new Date(previous.getTime() + random() * (at.getTime() - previous.getTime())));
						await attack(new Date(at.getTime() + 30 * 60_000));
					}
					h.clock.set(at);
					await folder.churn(run === 0 ? 0 : scenario.changesPerRun);
					const result = await h.engine.backup();
					store = unchangedStore(destination(), bytes);
					const snapshot = result.snapshot?.snapshot;
					if (!snapshot) throw new Error(`run ${run}: no snapshot`);
					uploaded += result.summary.bytes.uploaded;
					lastHorizon = result.plan.horizon;
					renewed += result.summary.bytes.renewed;
					expected.push({ time: snapshot.time, protectUntil: new Date(snapshot.protectUntil), files: folder.expected("src") });
					await attack(at);
					previous = at;
				}
				// After the last run, at random instants while its promise runs: under extend until every window
				// has closed; under reinclude until the horizon, since protection is renewed by the runs that follow.
				const lastEnd =
					phase.strategy === "extend" ? Math.max(...expected.map((s) => s.protectUntil.getTime())) : lastHorizon.getTime();
				for (let i = 0; i < 5; i++)
					await attack(new Date((previous as Date).getTime() + random() * (lastEnd - (previous as Date).getTime())));

				const open = await h.engine.open();
				const now = h.clock.now();
				const needed = new Set<string>();
				const seen = new Map<string, Set<string>>();
				for (const ref of await open.repository.listSnapshots()) {
					if (new Date(ref.snapshot.protectUntil).getTime() <= now.getTime()) continue;
					for (const id of (await collectSnapshotObjects(open.repository, ref, [], seen)).blobs) needed.add(id);
				}
				let unique = 0;
				for (const id of needed) unique += open.repository.index.blobs.get(id)?.length ?? 0;
				let stored = 0;
				let packs = 0;
				for await (const version of open.destination.listVersions(KEY_PREFIX.data)) {
					stored += version.size;
					packs++;
				}
				const failures = outcomes.flatMap((o) => o.failures.map((f) => `${o.at.toISOString()}: ${f}`));
				const worst = outcomes.reduce((w, o) => (o.failures.length > (w?.failures.length ?? 0) ? o : w), outcomes[0]);
				const slackDays = Math.min(14, phase.retentionDays / 6);
				console.log(
					`${scenario.name}: ${outcomes.length} attacks, ${outcomes.reduce((n, o) => n + o.restored, 0)} restores ` +
						`(${outcomes.reduce((n, o) => n + o.reused, 0)} from a view already restored), ` +
						`${failures.length} failed (worst ${worst?.at.toISOString()}: ${worst?.failures.length ?? 0}); ` +
						`stored/unique ${(stored / Math.max(1, unique)).toFixed(3)} (${stored} / ${unique} B in ${packs} packs); ` +
						`attacks took ${attackMs} ms; uploaded ${uploaded} B, renewed ${renewed} B; lock calls ${extendCalls.count}`,
				);
				expect(failures.slice(0, 10)).toEqual([]);
				expect(outcomes.reduce((n, o) => n + o.restored, 0)).toBeGreaterThan(0);
				if (scenario.maxStoredRatio) expect(stored / unique).toBeLessThanOrEqual(scenario.maxStoredRatio);
				if (phase.strategy === "extend") {
					const years = (now.getTime() - new Date(scenario.start).getTime()) / (365 * DAY_MS);
					expect(extendCalls.count).toBeLessThanOrEqual(Math.max(1, packs * 3) * Math.max(1, (365 * years) / slackDays));
				}
			},
			600_000,
		);
	});
}
