import type { SetConfig } from "@holdfast/core";
import { describe, expect, it } from "vitest";
import { B2_PRICES, forecaster } from "./forecast.js";

const GB = 1e9;

function tiered(): SetConfig {
	return {
		sources: [],
		destination: { type: "fs", path: "/" },
		retention: {
			days: 30,
			mode: "compliance",
			tiers: [
				{ every: "week", days: 90 },
				{ every: "month", days: 365 },
				{ every: "year", days: 2555 },
			],
		},
		schedule: { cron: "0 2 * * *", tz: "Europe/Berlin" },
		planner: { strategy: "auto", missedRuns: 0 },
	};
}

function forecast(set: SetConfig, weeklyChangeRate: number, rewriteShare = 0) {
	return forecaster.forecast({
		rewriteShare,
		start: new Date("2030-01-01T00:00:00Z"),
		periodDays: 730,
		weeklyChangeRate,
		bytes: 100 * GB,
		packBytes: 16 * 1024 * 1024,
		set,
		prices: B2_PRICES,
	});
}

describe("forecast of a tiered policy", () => {
	it("counts the runs each tier keeps", () => {
		const report = forecast(tiered(), 0.05);
		expect(report.assumptions.runs).toBe(730);
		expect(report.assumptions.tierRuns).toMatchObject({ year: 2, month: 22 });
		const counts = report.assumptions.tierRuns ?? {};
		expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(730);
	});

	it("prices the same runs under a flat policy of the longest tier: rewritten data is what tiers save", () => {
		const cost = (report: ReturnType<typeof forecast>, flat: boolean, strategy: string) =>
			((flat ? report.flat?.strategies : report.strategies) ?? []).find((s) => s.strategy === strategy)?.cost.total ?? 0;
		for (const share of [0, 0.5, 0.8]) {
			const report = forecast(tiered(), 0.05, share);
			expect(report.flat?.retentionDays).toBe(2555);
			const saved = cost(report, true, "extend") - cost(report, false, "extend");
			console.log(
				`rewrite ${share}: extend tiered ${cost(report, false, "extend")} USD, flat ${cost(report, true, "extend")} USD`,
			);
			// Spread over old files, nearly every change was in some long-kept snapshot; rewritten, most dies daily.
			if (share === 0) expect(saved).toBeGreaterThanOrEqual(0);
			else expect(saved / cost(report, true, "extend")).toBeGreaterThan(share / 4);
		}
	});

	it("a flat policy is forecast alone, and equals the tiers' comparison", () => {
		const set = tiered();
		const flat = forecast({ ...set, retention: { days: 2555, mode: "compliance" } }, 0.05);
		expect(flat.flat).toBeUndefined();
		expect(flat.assumptions.tierRuns).toBeUndefined();
		expect(forecast(set, 0.05).flat?.strategies).toEqual(flat.strategies);
	});
});
