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

export interface SetConfig {
	sources: TypedOptions[];
	destination: TypedOptions;
	retention: RetentionConfig;
	schedule?: ScheduleConfig;
	tags?: string[];
	/** Target pack size in MiB (16–32 by default). */
	packSizeMiB?: number;
	compression?: "auto" | "off";
	/** How long transient destination faults (5xx, throttling, timeouts) are retried, e.g. "2m". */
	retryBudget?: string;
	/** Keys a plugin owns (`planner`, `groom`, …): validated by the schema it contributes (`setKeys`). */
	readonly [pluginKey: string]: unknown;
}

export type PluginEntry = string | { use: string; options?: Record<string, unknown> };

export type SecretRef = { env: string } | { file: string };

export interface HoldfastConfig {
	plugins: PluginEntry[];
	catalog?: string;
	password?: SecretRef;
	/** The name this machine's snapshots record; default: the machine's hostname. */
	host?: string;
	sets: Record<string, SetConfig>;
}

/** A loaded config: where it came from, for messages and relative paths. */
export interface LoadedConfig {
	readonly file: string;
	readonly dir: string;
	readonly config: HoldfastConfig;
}
