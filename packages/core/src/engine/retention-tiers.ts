import type { RetentionConfig, RetentionTierPeriod, ScheduleConfig } from "../config/config-types.js";

/** What a snapshot is promised: the days of the longest tier it belongs to, and that tier's period (none for the base). */
export interface SnapshotTier {
	readonly days: number;
	readonly tier?: RetentionTierPeriod;
}

/**
 * The time zone in which a set's calendar weeks, months and years begin: the cron's `tz`; for
 * a cron without one, the host's own zone (the zone the cron runs in); for `every`, UTC.
 */
export function tierTimeZone(schedule: ScheduleConfig | undefined): string {
	if (schedule && "cron" in schedule) return schedule.tz ?? new Intl.DateTimeFormat().resolvedOptions().timeZone;
	return "UTC";
}

/** Whether `zone` is a time zone this Node knows (an IANA name such as `Europe/Berlin`). */
export function isTimeZone(zone: string): boolean {
	try {
		new Intl.DateTimeFormat("en-US", { timeZone: zone });
		return true;
	} catch {
		return false;
	}
}

const formats = new Map<string, Intl.DateTimeFormat>();

/** The calendar date of `time` in `zone`. */
function localDate(time: Date, zone: string): { year: number; month: number; day: number } {
	let format = formats.get(zone);
	if (!format) {
		format = new Intl.DateTimeFormat("en-US", { timeZone: zone, year: "numeric", month: "numeric", day: "numeric" });
		formats.set(zone, format);
	}
	const parts = Object.fromEntries(format.formatToParts(time).map((p) => [p.type, p.value]));
	return { year: Number(parts.year), month: Number(parts.month), day: Number(parts.day) };
}

/**
 * The calendar period `time` falls in, in `zone`, as a key equal for every instant of that
 * period: a week (Monday to Sunday, named by its Monday), a month or a year.
 */
export function calendarPeriod(time: Date, period: RetentionTierPeriod, zone: string): string {
	const { year, month, day } = localDate(time, zone);
	if (period === "year") return String(year);
	if (period === "month") return `${year}-${String(month).padStart(2, "0")}`;
	const date = new Date(Date.UTC(year, month - 1, day));
	const sinceMonday = (date.getUTCDay() + 6) % 7;
	date.setUTCDate(date.getUTCDate() - sinceMonday);
	return date.toISOString().slice(0, 10);
}

/**
 * The tier of a snapshot taken at `time`: it belongs to a tier when no earlier snapshot of its
 * set (`earlier`, the times of those listed now) falls in the same calendar period, and is kept
 * for the longest of the base days and the days of every tier it belongs to.
 */
export function snapshotTier(retention: RetentionConfig, time: Date, earlier: readonly Date[], zone: string): SnapshotTier {
	let best: SnapshotTier = { days: retention.days };
	for (const tier of retention.tiers ?? []) {
		if (tier.days <= best.days) continue;
		const period = calendarPeriod(time, tier.every, zone);
		const first = earlier.every((t) => t.getTime() >= time.getTime() || calendarPeriod(t, tier.every, zone) !== period);
		if (first) best = { days: tier.days, tier: tier.every };
	}
	return best;
}

/** The longest lock any snapshot of the set can be promised: the base days or its longest tier. */
export function longestRetentionDays(retention: RetentionConfig): number {
	return Math.max(retention.days, ...(retention.tiers ?? []).map((t) => t.days));
}

/**
 * What is wrong with a set's tiers, one line each: a tier no longer than the base keeps
 * nothing longer, and a period named twice is ambiguous.
 */
export function tierProblems(retention: RetentionConfig, path: string): string[] {
	const problems: string[] = [];
	const seen = new Set<string>();
	for (const [i, tier] of (retention.tiers ?? []).entries()) {
		if (tier.days <= retention.days) {
			problems.push(
				`${path}.tiers[${i}].days: ${tier.days} is not longer than retention.days (${retention.days}): a tier must keep its snapshots longer`,
			);
		}
		if (seen.has(tier.every)) problems.push(`${path}.tiers[${i}].every: "${tier.every}" is named by another tier too`);
		seen.add(tier.every);
	}
	return problems;
}
