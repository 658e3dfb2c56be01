import {
	addDays,
	DAY_MS,
	type Forecaster,
	type ForecastReport,
	type ForecastRequest,
	HoldfastError,
	longestRetentionDays,
	type PriceTable,
	type SetConfig,
	type StrategyForecast,
} from "@holdfast/core";
import { plannerConfig } from "./retention-planner.js";
import { tierOfRuns } from "./tier-runs.js";

/**
 * Data written together (one run's new data, or the copies one run made): how much of it the
 * newest snapshot still uses, how much only older snapshots use and until when, and its lock.
 */
interface Generation {
	live: number;
	dead: number;
	lockUntil: number;
	/** Older snapshots need the dead bytes until this time. */
	neededUntil: number;
	/** The latest protect-until of the snapshots that saw it live: the live bytes' need. */
	liveNeed: number;
}

/** The table a forecast uses when none is given: Backblaze B2's list prices. */
export const B2_PRICES: PriceTable = Object.freeze({
	name: "Backblaze B2 (list prices)",
	storagePerGbMonth: 0.006,
	classAPer10k: 0,
	classBPer10k: 0.004,
	classCPer1k: 0.004,
});

/** Objects every run writes besides data packs: a tree pack, an index object and the snapshot. */
const RUN_OBJECTS = 3;
/** Config and key copies kept protected (two of each). */
const METADATA_OBJECTS = 4;

const GB = 1e9;

/**
 * A model, not a measurement: the set's schedule is replayed over the period with the given
 * weekly change rate, each run's data a generation, grooming after every run. It counts what
 * each strategy uploads, the lock and list calls it makes, and what stays stored, priced with
 * the price table.
 */
export const forecaster: Forecaster = {
	forecast(request: ForecastRequest): ForecastReport {
		const report = forecastPolicy(request);
		if (!request.set.retention.tiers?.length) return report;
		// What the tiers save: the same runs with every snapshot kept as long as the longest tier.
		const days = longestRetentionDays(request.set.retention);
		const flatSet: SetConfig = { ...request.set, retention: { days, mode: request.set.retention.mode } };
		return { ...report, flat: { retentionDays: days, strategies: forecastPolicy({ ...request, set: flatSet }).strategies } };
	},
};

/** One policy's forecast: the set as configured, tiers and all. */
function forecastPolicy(request: ForecastRequest): ForecastReport {
	const resolved = plannerConfig(request.set, request.start);
	// The schedule's own run times: a monthly cron is twelve runs a year, whenever it is asked.
	const next = resolved.schedule ? (after: Date) => resolved.schedule?.next(after) as Date : (after: Date) => addDays(after, 7);
	// An interval runs from now on; a cron schedule at its own times from now on.
	const first =
		request.set.schedule && "cron" in request.set.schedule ? next(new Date(request.start.getTime() - 1)) : request.start;
	const runs = runsOver(first, request.periodDays - (first.getTime() - request.start.getTime()) / DAY_MS, next);
	const tiers = tierOfRuns(request.set, runs);
	const model: Model = {
		...request,
		runs,
		runDays: tiers.map((t) => t.days),
		retentionDays: request.set.retention.days,
		slackDays: resolved.slackMs / DAY_MS,
		missedRuns: resolved.missedRuns,
	};
	const { start: _start, set: _set, ...rest } = request;
	return {
		assumptions: {
			...rest,
			retentionDays: model.retentionDays,
			slackDays: model.slackDays,
			missedRuns: model.missedRuns,
			runs: runs.length,
			...(request.set.retention.tiers?.length ? { tierRuns: countTiers(tiers) } : {}),
			prices: request.prices ?? B2_PRICES,
		},
		strategies: [simulate(model, "extend"), simulate(model, "reinclude")],
	};
}

function countTiers(tiers: readonly { tier?: string }[]): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const t of tiers) counts[t.tier ?? "base"] = (counts[t.tier ?? "base"] ?? 0) + 1;
	return counts;
}

interface Model extends ForecastRequest {
	readonly runs: readonly Date[];
	/** Each run's retention: the days of the tier it belongs to. */
	readonly runDays: readonly number[];
	readonly retentionDays: number;
	readonly slackDays: number;
	readonly missedRuns: number;
}

/** Dead share of a generation past which its live bytes are copied rather than extended (as the planner decides). */
const REPACK_DEAD_SHARE = 0.5;

function simulate(request: Model, strategy: "extend" | "reinclude"): StrategyForecast {
	const slackMs = strategy === "extend" ? request.slackDays * DAY_MS : 0;
	const generations: Generation[] = [];
	/** Each run's tree pack, index object and snapshot: locked with the run, gone once the run's window and lock end. */
	const runObjects: { until: number; lockUntil: number }[] = [];
	const timeline: { at: string; bytes: number }[] = [];
	let metadataLock = 0;
	let uploadBytes = 0;
	let putCalls = 0;
	let lockCalls = 0;
	let listCalls = 0;
	let deleteCalls = 0;
	let storageGbMonths = 0;
	let groomed = false;
	const objects = (bytes: number) => Math.max(1, Math.ceil(bytes / request.packBytes));
	const runs = request.runs;
	for (const [i, run] of runs.entries()) {
		const t = run.getTime();
		const next = runs[i + 1]?.getTime() ?? t + (runs.length > 1 ? t - (runs[i - 1]?.getTime() ?? t) : 7 * DAY_MS);
		const interval = next - t;
		const margin = Math.min(DAY_MS, Math.max(3_600_000, interval / 10));
		const horizon = t + interval * (1 + request.missedRuns) + margin;
		const protectUntil = t + (request.runDays[i] ?? request.retentionDays) * DAY_MS;
		const runLock = strategy === "extend" ? protectUntil + slackMs : Math.max(protectUntil, horizon);
		const write = (generation: Generation) => {
			const bytes = generation.live + generation.dead;
			if (bytes <= 0) return;
			generations.push(generation);
			uploadBytes += bytes;
			putCalls += objects(bytes);
		};
		if (i === 0) write({ live: request.bytes, dead: 0, lockUntil: runLock, neededUntil: 0, liveNeed: protectUntil });
		else {
			// Changed data replaces live data; the old copies stay for older snapshots.
			const changed = Math.min(request.bytes, request.bytes * request.weeklyChangeRate * (interval / (7 * DAY_MS)));
			const replace = (g: Generation, bytes: number) => {
				g.live -= bytes;
				g.dead += bytes;
				// The replaced bytes were in every snapshot that saw the generation live, the longest-kept included.
				g.neededUntil = Math.max(g.neededUntil, g.liveNeed);
			};
			// The rewriting share replaces the newest data first (a database, a mailbox, logs changed again).
			let rewrite = changed * (request.rewriteShare ?? 0);
			for (let k = generations.length - 1; k >= 0 && rewrite > 0; k--) {
				const g = generations[k] as Generation;
				if (g.live <= 0) continue;
				const bytes = Math.min(g.live, rewrite);
				replace(g, bytes);
				rewrite -= bytes;
			}
			// The rest replaces live data in every generation alike.
			const spread = changed * (1 - (request.rewriteShare ?? 0)) + rewrite;
			const live = generations.reduce((sum, g) => sum + g.live, 0);
			for (const g of generations) {
				if (g.live <= 0) continue;
				const replaced = live > 0 ? (g.live / live) * spread : 0;
				if (replaced > 0) replace(g, replaced);
			}
			write({ live: changed, dead: 0, lockUntil: runLock, neededUntil: 0, liveNeed: protectUntil });
			for (const g of generations) if (g.live > 0) g.liveNeed = Math.max(g.liveNeed, protectUntil);
			for (const g of [...generations]) {
				const need = Math.max(g.live > 0 ? g.liveNeed : 0, g.dead > 0 ? g.neededUntil : 0);
				const target = strategy === "extend" ? need : Math.min(need, horizon);
				if (g.lockUntil >= target) continue;
				const deadNeeded = g.neededUntil > g.lockUntil ? g.dead : 0;
				const copy = strategy === "reinclude" || (g.live + g.dead > 0 && g.dead / (g.live + g.dead) >= REPACK_DEAD_SHARE);
				if (copy) {
					// Copied into new packs; the old ones lapse, needed by no one.
					const moved: Generation = {
						live: g.live,
						dead: strategy === "reinclude" ? deadNeeded : 0,
						lockUntil: strategy === "extend" ? g.liveNeed + slackMs : Math.max(need, horizon),
						neededUntil: g.neededUntil,
						liveNeed: g.liveNeed,
					};
					g.live = 0;
					if (strategy === "reinclude") g.neededUntil = 0;
					write(moved);
					if (g.dead > 0 && g.neededUntil > g.lockUntil) {
						lockCalls += objects(g.dead) + 1;
						g.lockUntil = g.neededUntil + slackMs;
					}
					continue;
				}
				// Extended with the index object of its run (its trees are mostly superseded by then). A
				// generation smaller than a pack is a few files, each live or dead as a whole: its pack is
				// still in use in proportion to its live share.
				const share = g.live + g.dead < request.packBytes && g.live > 0 ? g.live / (g.live + g.dead) : 1;
				lockCalls += Math.round((objects(g.live + g.dead) + 1) * share * 100) / 100;
				g.lockUntil = need + slackMs;
			}
		}
		runObjects.push({ until: protectUntil, lockUntil: runLock });
		putCalls += RUN_OBJECTS;
		if (metadataLock < (strategy === "extend" ? protectUntil : horizon)) {
			if (strategy === "extend" && i > 0) lockCalls += METADATA_OBJECTS;
			else if (i > 0) putCalls += METADATA_OBJECTS;
			metadataLock = runLock;
		}
		// Listing the index, snapshots, keys and config at the start of the run, and everything at grooming.
		const stored = generations.reduce((sum, g) => sum + g.live + g.dead, 0);
		listCalls += 4 + Math.ceil((objects(stored) + runObjects.length * RUN_OBJECTS) / 1000);
		// Grooming: what no snapshot uses goes once its lock has ended; the newest groom's index object stays.
		let deleted = 0;
		for (const g of [...generations]) {
			if (g.live <= 0 && g.lockUntil <= t && g.neededUntil <= t) {
				deleted += objects(g.dead);
				generations.splice(generations.indexOf(g), 1);
			}
		}
		for (const r of [...runObjects]) {
			if (r.until <= t && r.lockUntil <= t && runObjects.length > 1) {
				// Under extend a run's index object lives on with its data, extended alongside.
				deleted += strategy === "extend" ? RUN_OBJECTS - 1 : RUN_OBJECTS;
				runObjects.splice(runObjects.indexOf(r), 1);
			}
		}
		const forgets = runObjects.some((r) => r.until <= t);
		if (deleted > 0 || forgets) {
			putCalls++;
			if (groomed) deleted++;
			groomed = true;
		}
		deleteCalls += deleted;
		const now = generations.reduce((sum, g) => sum + g.live + g.dead, 0);
		timeline.push({ at: run.toISOString(), bytes: Math.round(now) });
		storageGbMonths += (now / GB) * (interval / (30 * DAY_MS));
	}
	const prices = request.prices ?? B2_PRICES;
	const storage = storageGbMonths * prices.storagePerGbMonth;
	const transactions =
		((putCalls + lockCalls + deleteCalls) / 10_000) * prices.classAPer10k + (listCalls / 1000) * prices.classCPer1k;
	return {
		strategy,
		uploadBytes: Math.round(uploadBytes),
		putCalls,
		lockCalls: Math.round(lockCalls),
		listCalls,
		deleteCalls,
		storedBytes: timeline,
		peakStoredBytes: Math.max(0, ...timeline.map((p) => p.bytes)),
		cost: { storage: round(storage), transactions: round(transactions), total: round(storage + transactions), currency: "USD" },
	};
}

function round(value: number): number {
	return Math.round(value * 100) / 100;
}

/**
 * The most runs a forecast replays: a year of hourly runs, 27 years of daily ones. The replay
 * grows faster than the runs (each run looks at the objects of those before), so a longer one
 * would sit silent for minutes; it is refused, never cut short and priced as if whole.
 */
export const MAX_FORECAST_RUNS = 10_000;

/** Run times of a schedule from `start` over `days`. */
export function runsOver(start: Date, days: number, next: (after: Date) => Date): Date[] {
	const end = addDays(start, days).getTime();
	const runs = [start];
	for (let at = next(start); at.getTime() < end; at = next(at)) {
		if (runs.length >= MAX_FORECAST_RUNS) {
			throw new HoldfastError(
				"USAGE",
				`a forecast of ${Math.round(days)} days holds more than ${MAX_FORECAST_RUNS.toLocaleString("en")} runs of this schedule, the most one replays: forecast a shorter period (the schedule reached that count after ${Math.floor((at.getTime() - start.getTime()) / DAY_MS)} days)`,
			);
		}
		runs.push(at);
	}
	return runs;
}
