import { describe, expect, it } from "vitest";
import type { RetentionConfig } from "../config/config-types.js";
import { calendarPeriod, longestRetentionDays, snapshotTier, tierProblems, tierTimeZone } from "./retention-tiers.js";

const tiered: RetentionConfig = {
	days: 30,
	mode: "compliance",
	tiers: [
		{ every: "week", days: 90 },
		{ every: "month", days: 365 },
		{ every: "year", days: 2555 },
	],
};

/** Each day's 02:00 UTC run from `from`, `count` of them. */
function dailies(from: string, count: number): Date[] {
	return Array.from({ length: count }, (_, i) => new Date(new Date(from).getTime() + i * 86_400_000));
}

describe("retention tiers", () => {
	it("names weeks by their Monday, months and years in the given zone", () => {
		// Sunday 2030-01-06 23:30 UTC is already Monday 2030-01-07 in Berlin.
		const late = new Date("2030-01-06T23:30:00Z");
		expect(calendarPeriod(late, "week", "UTC")).toBe("2029-12-31");
		expect(calendarPeriod(late, "week", "Europe/Berlin")).toBe("2030-01-07");
		// 2030-01-31 23:30 UTC is February in Berlin, still January in New York.
		const monthEnd = new Date("2030-01-31T23:30:00Z");
		expect(calendarPeriod(monthEnd, "month", "Europe/Berlin")).toBe("2030-02");
		expect(calendarPeriod(monthEnd, "month", "America/New_York")).toBe("2030-01");
		expect(calendarPeriod(new Date("2030-12-31T23:30:00Z"), "year", "Asia/Tokyo")).toBe("2031");
	});

	it("gives each run of a year of dailies the longest tier whose period it opens", () => {
		const runs = dailies("2030-01-01T02:00:00Z", 365);
		const tiers = runs.map((time, i) => snapshotTier(tiered, time, runs.slice(0, i), "UTC"));
		const count = (tier: string | undefined) => tiers.filter((t) => t.tier === tier).length;
		expect(tiers[0]).toEqual({ days: 2555, tier: "year" });
		expect(count("year")).toBe(1);
		expect(count("month")).toBe(11);
		// 2030-01-01 is a Tuesday: 52 Mondays open a week, two of them (April 1, July 1) a month too.
		expect(count("week")).toBe(52 - 2);
		expect(count(undefined)).toBe(365 - 1 - 11 - 50);
		expect(tiers[6]).toEqual({ days: 90, tier: "week" }); // Monday 2030-01-07
		expect(tiers[7]).toEqual({ days: 30 });
	});

	it("makes the next backup of the period the first when the first is not listed (failed, or forgotten)", () => {
		// The year and the month were opened earlier; June 10 2030 is a Monday.
		const before = [new Date("2030-01-01T02:00:00Z"), new Date("2030-06-01T02:00:00Z")];
		const monday = new Date("2030-06-10T02:00:00Z");
		const tuesday = new Date("2030-06-11T02:00:00Z");
		expect(snapshotTier(tiered, tuesday, [...before, monday], "UTC")).toEqual({ days: 30 });
		expect(snapshotTier(tiered, tuesday, before, "UTC")).toEqual({ days: 90, tier: "week" });
		// A snapshot listed with a later time (another host's clock) does not take the tier away.
		expect(snapshotTier(tiered, monday, [...before, tuesday], "UTC")).toEqual({ days: 90, tier: "week" });
	});

	it("keeps the longest tier when a short one is listed after a long one", () => {
		const odd: RetentionConfig = {
			...tiered,
			tiers: [
				{ every: "year", days: 400 },
				{ every: "week", days: 60 },
			],
		};
		expect(snapshotTier(odd, new Date("2030-01-01T02:00:00Z"), [], "UTC")).toEqual({ days: 400, tier: "year" });
		expect(longestRetentionDays(odd)).toBe(400);
		expect(longestRetentionDays({ days: 30, mode: "compliance" })).toBe(30);
	});

	it("takes the zone from a cron schedule, UTC for an interval", () => {
		expect(tierTimeZone({ cron: "0 2 * * *", tz: "Europe/Berlin" })).toBe("Europe/Berlin");
		expect(tierTimeZone({ every: "1d" })).toBe("UTC");
		expect(tierTimeZone(undefined)).toBe("UTC");
	});

	it("refuses a tier no longer than the base, and a period named twice", () => {
		const bad: RetentionConfig = {
			days: 30,
			mode: "compliance",
			tiers: [
				{ every: "week", days: 30 },
				{ every: "month", days: 365 },
				{ every: "month", days: 400 },
			],
		};
		expect(tierProblems(bad, "sets.office.retention")).toEqual([
			"sets.office.retention.tiers[0].days: 30 is not longer than retention.days (30): a tier must keep its snapshots longer",
			'sets.office.retention.tiers[2].every: "month" is named by another tier too',
		]);
		expect(tierProblems(tiered, "sets.office.retention")).toEqual([]);
	});
});
