import type { SetConfig } from "../config/config-types.js";

/**
 * The cost forecast's contract: the planner plugin provides a Forecaster through the
 * container (`TOKENS.Forecaster`); the CLI asks it for `holdfast plan --forecast`.
 */
export interface PriceTable {
	readonly name: string;
	/** Per GB (10^9 bytes) stored for a month of 30 days. */
	readonly storagePerGbMonth: number;
	/** Class A (PUT, PutObjectRetention, DELETE), per 10,000 calls. */
	readonly classAPer10k: number;
	/** Class B (GET, HEAD), per 10,000 calls. */
	readonly classBPer10k: number;
	/** Class C (LIST), per 1,000 calls. */
	readonly classCPer1k: number;
}

export interface ForecastRequest {
	readonly start: Date;
	readonly periodDays: number;
	/** Share of the data that changes each week (0.01 = 1 %). */
	readonly weeklyChangeRate: number;
	/**
	 * Share of the changes (0–1) that rewrite data changed lately — a database, a mailbox, logs —
	 * rather than old files; the rest is spread over all the data. Default 0.
	 */
	readonly rewriteShare?: number;
	/** Size of the latest snapshot, and how many objects it spans. */
	readonly bytes: number;
	readonly packBytes: number;
	/** The set: its retention, schedule and planner settings decide the runs and the locks. */
	readonly set: SetConfig;
	/** The forecaster's own table when absent. */
	readonly prices?: PriceTable;
}

export interface StrategyForecast {
	readonly strategy: "extend" | "reinclude";
	readonly uploadBytes: number;
	readonly putCalls: number;
	readonly lockCalls: number;
	readonly listCalls: number;
	readonly deleteCalls: number;
	readonly storedBytes: { at: string; bytes: number }[];
	readonly peakStoredBytes: number;
	readonly cost: { storage: number; transactions: number; total: number; currency: "USD" };
}

export interface ForecastReport {
	readonly assumptions: Omit<ForecastRequest, "start" | "prices" | "set"> & {
		retentionDays: number;
		slackDays: number;
		missedRuns: number;
		/** How many runs the schedule makes over the period. */
		runs: number;
		/** With retention tiers: how many of the runs each tier keeps (`base`: the set's own days). */
		tierRuns?: Record<string, number>;
		prices: PriceTable;
	};
	readonly strategies: StrategyForecast[];
	/** With retention tiers: the same runs under a flat policy of the longest tier, to price what the tiers save. */
	readonly flat?: { readonly retentionDays: number; readonly strategies: StrategyForecast[] };
}

export interface Forecaster {
	forecast(request: ForecastRequest): ForecastReport;
}

/** Checks a set's schedule against its retention and the destination's cap, before any run. */
export interface ScheduleAdvisor {
	/** One line each: what the schedule cannot promise, and what to change. */
	warnings(set: SetConfig, maxRetentionDays: number, now: Date): string[];
	/** How many scheduled runs in a row may be missed before a lock may lapse (the planner's `missedRuns`). */
	allowedMisses(set: SetConfig): number;
	/**
	 * What makes the set's schedule unusable, one line each starting with the key under the set
	 * (`schedule.cron: …`): checked before any command runs, so a bad pattern is a config error
	 * with its file and line, not a failed run.
	 */
	problems?(set: SetConfig): string[];
}
