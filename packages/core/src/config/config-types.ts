import type { LockMode } from "../destination/destination.js";

/** `{ type: fs, path: … }`: the rest is validated by the schema of the plugin that owns `type`. */
export interface TypedOptions {
	type: string;
	[key: string]: unknown;
}

/** The calendar period whose first backup a tier keeps longer. */
export type RetentionTierPeriod = "week" | "month" | "year";

export interface RetentionTier {
	every: RetentionTierPeriod;
	days: number;
}

export interface RetentionConfig {
	days: number;
	mode: LockMode;
	/** The first backup of each week, month or year kept longer than `days`. */
	tiers?: RetentionTier[];
}

export type ScheduleConfig = { every: string } | { cron: string; tz?: string };

export interface PlannerConfig {
	strategy: "auto" | "extend" | "reinclude";
	missedRuns: number;
	/** Default: retention / 6, at most 14. */
	slackDays?: number;
	/** A duration (`6h`); default: a tenth of the schedule's interval, between 1 h and 1 d. */
	margin?: string;
}

export interface GroomConfig {
	match: "retention";
	afterBackup?: boolean;
	keepLast?: number;
	keepDaily?: number;
	keepWeekly?: number;
	keepMonthly?: number;
	keepYearly?: number;
	keepWithin?: string;
	keepTags?: string[];
	/** Nothing younger than this is deleted, so a concurrent backup's objects are safe. */
	graceHours?: number;
}

export interface SetConfig {
	sources: TypedOptions[];
	destination: TypedOptions;
	retention: RetentionConfig;
	schedule?: ScheduleConfig;
	planner?: PlannerConfig;
	groom?: GroomConfig;
	tags?: string[];
	/** Target pack size in MiB (16–32 by default). */
	packSizeMiB?: number;
	compression?: "auto" | "off";
	/** How long transient destination faults (5xx, throttling, timeouts) are retried, e.g. "2m". */
	retryBudget?: string;
}

export type PluginEntry = string | { use: string; options?: Record<string, unknown> };

export type SecretRef = { env: string } | { file: string };

export interface HoldfastConfig {
	plugins: PluginEntry[];
	catalog?: string;
	password?: SecretRef;
	host?: string;
	sets: Record<string, SetConfig>;
}

/** A loaded config: where it came from, for messages and relative paths. */
export interface LoadedConfig {
	readonly file: string;
	readonly dir: string;
	readonly config: HoldfastConfig;
}
