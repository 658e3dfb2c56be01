import {
	addDays,
	DAY_MS,
	type Forecaster,
	type ForecastReport,
	type ForecastRequest,
	type StrategyForecast,
} from "@holdfast/core";
import { plannerConfig } from "./retention-planner.js";

/** Data written by one run: how much of it the latest snapshot still uses, and until when it is locked. */
interface Generation {
	live: number;
	dead: number;
	lockUntil: number;
	/** Dead bytes are needed by older snapshots until this time. */
	neededUntil: number;
}

const GB = 1e9;

/**
 * A model, not a measurement: the set's schedule is replayed over the period with the given
 * weekly change rate, each run's data a generation, grooming after every run. It counts what
 * each strategy uploads, the lock and list calls it makes, and what stays stored, priced with
 * the price table.
 */
export const forecaster: Forecaster = {
	forecast(request: ForecastRequest): ForecastReport {
		const resolved = plannerConfig(request.set, request.start);
		// The schedule's own run times: a monthly cron is twelve runs a year, whenever it is asked.
		const next = resolved.schedule ? (after: Date) => resolved.schedule?.next(after) as Date : (after: Date) => addDays(after, 7);
		// An interval runs from now on; a cron schedule at its own times from now on.
		const first =
			request.set.schedule && "cron" in request.set.schedule ? next(new Date(request.start.getTime() - 1)) : request.start;
		const runs = runsOver(first, request.periodDays - (first.getTime() - request.start.getTime()) / DAY_MS, next);
		const model: Model = {
			...request,
			runs,
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
				prices: request.prices,
			},
			strategies: [simulate(model, "extend"), simulate(model, "reinclude")],
		};
	},
};

interface Model extends ForecastRequest {
	readonly runs: readonly Date[];
	readonly retentionDays: number;
	readonly slackDays: number;
	readonly missedRuns: number;
}

/** Dead share of a generation past which its live bytes are copied rather than extended (as the planner decides). */
const REPACK_DEAD_SHARE = 0.5;

function simulate(request: Model, strategy: "extend" | "reinclude"): StrategyForecast {
	const retentionMs = request.retentionDays * DAY_MS;
	const slackMs = strategy === "extend" ? request.slackDays * DAY_MS : 0;
	const generations: Generation[] = [];
	const timeline: { at: string; bytes: number }[] = [];
	let uploadBytes = 0;
	let putCalls = 0;
	let lockCalls = 0;
	let listCalls = 0;
	let deleteCalls = 0;
	let storageGbMonths = 0;
	const objects = (bytes: number) => Math.max(1, Math.ceil(bytes / request.packBytes));
	const runs = request.runs;
	for (const [i, run] of runs.entries()) {
		const t = run.getTime();
		const next = runs[i + 1]?.getTime() ?? t + (runs.length > 1 ? t - (runs[i - 1]?.getTime() ?? t) : 7 * DAY_MS);
		const interval = next - t;
		const horizon = t + interval * (1 + request.missedRuns);
		const write = (bytes: number) => {
			if (bytes <= 0) return;
			generations.push({ live: bytes, dead: 0, lockUntil: t + retentionMs + slackMs, neededUntil: 0 });
			uploadBytes += bytes;
			putCalls += objects(bytes) + 1;
		};
		if (i === 0) write(request.bytes);
		else {
			// Changed data replaces live data in every generation alike; the old copies stay for older snapshots.
			const changed = Math.min(request.bytes, request.bytes * request.weeklyChangeRate * (interval / (7 * DAY_MS)));
			const live = generations.reduce((sum, g) => sum + g.live, 0);
			for (const g of generations) {
				if (g.live <= 0) continue;
				const replaced = live > 0 ? (g.live / live) * changed : 0;
				g.live -= replaced;
				g.dead += replaced;
				// The snapshots up to this run still use what was replaced now.
				g.neededUntil = t + retentionMs;
			}
			write(changed);
			for (const g of [...generations]) {
				if (g.live <= 0) continue;
				if (strategy === "extend" && g.lockUntil < t + retentionMs) {
					if (g.dead / (g.live + g.dead) >= REPACK_DEAD_SHARE) {
						// Copied into a new generation; the old one lapses once no snapshot needs it.
						const bytes = g.live;
						g.live = 0;
						g.neededUntil = Math.max(g.neededUntil, t + retentionMs);
						write(bytes);
						continue;
					}
					lockCalls += objects(g.live + g.dead);
					g.lockUntil = t + retentionMs + slackMs;
				} else if (strategy === "reinclude" && g.lockUntil < horizon) {
					const bytes = g.live;
					g.dead += bytes;
					g.live = 0;
					g.neededUntil = Math.max(g.neededUntil, t + retentionMs);
					write(bytes);
				}
			}
		}
		// Listing the index, snapshots, keys and config at the start of the run, and data at grooming.
		const stored = generations.reduce((sum, g) => sum + g.live + g.dead, 0);
		listCalls += 4 + Math.ceil(objects(stored) / 1000);
		// Grooming: a generation no snapshot uses goes once its lock has expired. Dead parts of
		// generations still in use stay (packs are not rewritten).
		for (const g of [...generations]) {
			if (g.live <= 0 && g.lockUntil <= t && g.neededUntil <= t) {
				deleteCalls += objects(g.dead);
				generations.splice(generations.indexOf(g), 1);
			}
		}
		const now = generations.reduce((sum, g) => sum + g.live + g.dead, 0);
		timeline.push({ at: run.toISOString(), bytes: Math.round(now) });
		storageGbMonths += (now / GB) * (interval / (30 * DAY_MS));
	}
	const prices = request.prices;
	const storage = storageGbMonths * prices.storagePerGbMonth;
	const transactions =
		((putCalls + lockCalls + deleteCalls) / 10_000) * prices.classAPer10k + (listCalls / 1000) * prices.classCPer1k;
	return {
		strategy,
		uploadBytes: Math.round(uploadBytes),
		putCalls,
		lockCalls,
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

/** Run times of a schedule from `start` over `days`. */
export function runsOver(start: Date, days: number, next: (after: Date) => Date): Date[] {
	const end = addDays(start, days).getTime();
	const runs = [start];
	for (let at = next(start); at.getTime() < end && runs.length < 100_000; at = next(at)) runs.push(at);
	return runs;
}
