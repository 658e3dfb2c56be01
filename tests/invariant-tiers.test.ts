import { join } from "node:path";
import { EmulatedLocks, KEY_PREFIX, type RetentionConfig, type ScheduleConfig, type SetConfig } from "@holdfast/core";
import { scheduleOf } from "@holdfast/plugin-retention-planner";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type AttackOutcome, attackAndRestore, type ExpectedSnapshot, ProvenViews, unchangedStore } from "./support/attacker.js";
import { rememberCronRuns } from "./support/cron-memo.js";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { memoryDestination } from "./support/memory-store-plugin.js";
import { ChurningFolder, prng } from "./support/world.js";

/**
 * Tiered retention held to the promise over two simulated years of daily runs: the first
 * backup of each week is kept 90 days, of each month a year, of each year seven, the rest
 * 30 days. To keep the test affordable, it strikes on a seeded sample of runs — every run of
 * the first two weeks and of each year's first week (where tiers change hands), and about
 * one in ten otherwise: there `check` audits every snapshot against its own protect-until
 * (zero gaps), and the attacker (every version whose lock ended deleted, the catalog dropped)
 * restores every snapshot in its window bit-exactly after the run, at a random instant
 * before it, and while it is starting. Grooming runs weekly (and once at the end). The same
 * world under a flat policy of the longest tier shows what the tiers save in stored bytes.
 * What keeps it affordable without testing less: the attacks before a run see the store the
 * last run left, read once; a view whose versions and locks equal one already restored is not
 * restored again; croner's answers are remembered; the source folder lives in memory (tmpfs)
 * and the repository in a memory store behind the same lock emulation as a folder's (the
 * planner, renewals, grooming and the attacker meet the same Object Lock rules; reading a lock
 * record file per version at every listing cost more than the rest of a run, and the `fs`
 * type's own tests and the other attacker scenarios cover the folder).
 */

const TIERED: RetentionConfig = {
	days: 30,
	mode: "compliance",
	tiers: [
		{ every: "week", days: 90 },
		{ every: "month", days: 365 },
		{ every: "year", days: 2555 },
	],
};
const FLAT: RetentionConfig = { days: 2555, mode: "compliance" };

const SCHEDULE: ScheduleConfig = { cron: "0 2 * * *", tz: "Europe/Berlin" };
// The first run is 02:00 in Berlin on New Year's Day 2030: 730 runs are the years 2030 and 2031.
const START = "2029-12-31T12:00:00Z";
const RUNS = Number(process.env.HOLDFAST_TIER_RUNS ?? 730);
/** The flat policy keeps every snapshot in its window, so each of its runs costs more: it is compared over the first 150 days. */
const COMPARE_RUNS = Math.min(RUNS, 150);

const harnesses: Harness[] = [];
/** Lock extensions asked of each world's repository (by the destination's description, which names its folder). */
const lockCalls = new Map<string, number>();
let forgetCronRuns: (() => void) | undefined;
beforeAll(() => {
	forgetCronRuns = rememberCronRuns();
	const original = EmulatedLocks.prototype.extendLock;
	vi.spyOn(EmulatedLocks.prototype, "extendLock").mockImplementation(async function (this: EmulatedLocks, ...args) {
		lockCalls.set(this.description, (lockCalls.get(this.description) ?? 0) + 1);
		return original.apply(this, args);
	});
});
afterAll(async () => {
	vi.restoreAllMocks();
	forgetCronRuns?.();
	for (const h of harnesses) await h.close();
});

interface WorldResult {
	/** Stored after COMPARE_RUNS runs. */
	readonly storedBytes: number;
	readonly lockCalls: number;
	readonly attacks: AttackOutcome[];
	readonly gaps: string[];
	readonly listed: { tier: string; protectUntil: string; time: string }[];
	readonly expected: ExpectedSnapshot[];
	readonly end: Date;
}

async function storedDataBytes(h: Harness): Promise<number> {
	const open = await h.engine.open();
	let bytes = 0;
	for (const prefix of [KEY_PREFIX.data, KEY_PREFIX.index, KEY_PREFIX.snapshots]) {
		for await (const version of open.destination.listVersions(prefix)) bytes += version.size;
	}
	return bytes;
}

async function runWorld(label: string, retention: RetentionConfig, runs: number, attack: boolean): Promise<WorldResult> {
	const set = (dir: string): SetConfig =>
		setConfig(dir, {
			destination: memoryDestination(dir),
			retention,
			schedule: SCHEDULE,
			planner: { strategy: "extend", missedRuns: 0 },
			groom: { match: "retention", afterBackup: false, graceHours: 1 },
		});
	const h = await createHarness({
		start: START,
		inMemory: true,
		memoryStore: true,
		memoryCatalog: true,
		sets: (dir) => ({ main: set(dir) }),
	});
	harnesses.push(h);
	const calls = () => lockCalls.get(`memory:${h.dir}/repo`) ?? 0;
	await h.engine.init();
	const folder = new ChurningFolder(join(h.dir, "src"), { files: 12, fileBytes: 4096, seed: 3 });
	await folder.create();
	const schedule = scheduleOf(SCHEDULE);
	const pick = prng(17);
	const between = prng(29);
	const expected: ExpectedSnapshot[] = [];
	const attacks: AttackOutcome[] = [];
	const gaps: string[] = [];
	const destination = () => h.engine.destinationFor("main", h.engine.resolveSet("main").set);
	// Between two runs nothing is written, so views with the same surviving versions and locks restore alike.
	const proven = new ProvenViews();
	// What the attacks see until the next write: read once, however many instants attack it.
	const bytes = new Map<string, Promise<Uint8Array>>();
	let store = unchangedStore(destination(), bytes);
	const spent = { backup: 0, groom: 0, check: 0, attack: 0 };
	const timed = async <T>(what: keyof typeof spent, body: () => Promise<T>): Promise<T> => {
		const began = Date.now();
		try {
			return await body();
		} finally {
			spent[what] += Date.now() - began;
		}
	};
	const strike = (at: Date) =>
		timed("attack", async () => attacks.push(await attackAndRestore(store, "correct horse", expected, at, proven)));
	let at = schedule?.next(new Date(START)) as Date;
	let previous: Date | undefined;
	let storedAtComparison = 0;
	for (let run = 0; run < runs; run++, at = schedule?.next(at) as Date) {
		const newYear = at.getUTCMonth() === 0 && at.getUTCDate() <= 8;
		const struck = attack && (run < 14 || newYear || pick() < 0.1);
		if (struck && previous) {
			await strike(new Date(previous.getTime() + between() * (at.getTime() - previous.getTime())));
			await strike(new Date(at.getTime() + 30 * 60_000));
		}
		h.clock.set(at);
		await folder.churn(run === 0 ? 0 : 1);
		const snapshot = (await timed("backup", () => h.engine.backup())).snapshot?.snapshot;
		// Grooming once a week, as a cron job would: each groom walks every snapshot still listed.
		if (run % 7 === 6) await timed("groom", () => h.engine.groom());
		if (!snapshot) throw new Error(`${label} run ${run}: no snapshot`);
		store = unchangedStore(destination(), bytes);
		expected.push({ time: snapshot.time, protectUntil: new Date(snapshot.protectUntil), files: folder.expected("src") });
		if (struck) {
			const report = await timed("check", () => h.engine.check(undefined, { readDataPercent: 0 }));
			for (const gap of report.immutability.gaps) gaps.push(`${at.toISOString()}: ${gap.snapshot.slice(0, 12)} ${gap.key}`);
			store = unchangedStore(destination(), bytes);
			await strike(at);
		}
		if (run === COMPARE_RUNS - 1) storedAtComparison = await storedDataBytes(h);
		if (run % 61 === 0 || run === runs - 1) {
			console.log(
				`${label}, day ${run + 1} (${at.toISOString().slice(0, 10)}): stored ${await storedDataBytes(h)} B, lock calls ${calls()}; ms spent ${JSON.stringify(spent)}`,
			);
		}
		previous = at;
	}
	await h.engine.groom();
	const listed = (await h.engine.snapshots()).map((r) => ({
		tier: r.snapshot.retention.tier ?? "base",
		protectUntil: r.snapshot.protectUntil,
		time: r.snapshot.time,
	}));
	return { storedBytes: storedAtComparison, lockCalls: calls(), attacks, gaps, listed, expected, end: h.clock.now() };
}

describe("tiered retention keeps each snapshot's own promise", () => {
	it(`${RUNS} daily runs with week, month and year tiers: every snapshot in its window restores, no gaps`, async () => {
		const began = Date.now();
		// The worlds are independent (own folder, repository, clock): each runs while the other waits on the disk.
		const [tiered, flat] = await Promise.all([
			runWorld("tiered", TIERED, RUNS, true),
			runWorld("flat 2555 d", FLAT, COMPARE_RUNS, false),
		]);

		const failures = tiered.attacks.flatMap((o) => o.failures.map((f) => `${o.at.toISOString()}: ${f}`));
		const restores = tiered.attacks.reduce((n, o) => n + o.restored, 0);
		const byTier = (tier: string) => tiered.listed.filter((s) => s.tier === tier).length;
		console.log(
			`tiered over ${RUNS} runs: ${tiered.attacks.length} attacks, ${restores} restores, ${failures.length} failed, ` +
				`${tiered.gaps.length} gaps; listed at the end ${tiered.listed.length} (base ${byTier("base")}, week ${byTier("week")}, ` +
				`month ${byTier("month")}, year ${byTier("year")}); lock calls ${tiered.lockCalls}; after ${COMPARE_RUNS} runs ` +
				`stored ${tiered.storedBytes} B tiered, ${flat.storedBytes} B flat 2555 d; ${Date.now() - began} ms`,
		);
		expect(failures.slice(0, 10)).toEqual([]);
		expect(tiered.gaps.slice(0, 10)).toEqual([]);
		// At every attack, every snapshot in its window was restored.
		for (const outcome of tiered.attacks) expect(outcome.restored).toBe(outcome.inWindow);

		// Grooming forgot each snapshot once its own window closed, and none before.
		const end = tiered.end.getTime();
		const inWindow = tiered.expected.filter((s) => s.protectUntil.getTime() > end).map((s) => s.time);
		expect(tiered.listed.map((s) => s.time).sort()).toEqual(inWindow.sort());
		// Each tier holds its own: the 30-day base, about 13 weeks, 12 months, and every year begun.
		expect(byTier("base")).toBeGreaterThanOrEqual(24);
		expect(byTier("base")).toBeLessThanOrEqual(30);
		if (RUNS >= 400) {
			expect(byTier("week")).toBeGreaterThanOrEqual(9);
			expect(byTier("month")).toBeGreaterThanOrEqual(11);
			expect(byTier("year")).toBe(Math.ceil(RUNS / 365));
		}
		for (const s of tiered.listed) {
			const days = (new Date(s.protectUntil).getTime() - new Date(s.time).getTime()) / 86_400_000;
			expect(days).toBe({ base: 30, week: 90, month: 365, year: 2555 }[s.tier]);
		}
		// The point of tiers: the dailies' own data is not kept for seven years.
		expect(tiered.storedBytes).toBeLessThan(flat.storedBytes);
	}, 3_600_000);
});
