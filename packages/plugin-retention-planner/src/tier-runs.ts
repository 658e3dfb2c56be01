import { calendarPeriod, type SetConfig, type SnapshotTier, tierTimeZone } from "@holdfast/core";

/**
 * The tier of each of a schedule's runs, oldest first, as the core decides it when each runs:
 * a run that opens a calendar week, month or year (in the schedule's zone) is kept for the
 * longest tier it opens.
 */
export function tierOfRuns(set: SetConfig, runs: readonly Date[]): SnapshotTier[] {
	const zone = tierTimeZone(set.schedule);
	const tiers = set.retention.tiers ?? [];
	const seen = tiers.map(() => new Set<string>());
	return runs.map((time) => {
		let best: SnapshotTier = { days: set.retention.days };
		for (const [i, tier] of tiers.entries()) {
			const period = calendarPeriod(time, tier.every, zone);
			const opens = !seen[i]?.has(period);
			seen[i]?.add(period);
			if (opens && tier.days > best.days) best = { days: tier.days, tier: tier.every };
		}
		return best;
	});
}
