import type { ScheduleConfig, SetConfig } from "@holdfast/core";
import { describe, expect, it } from "vitest";
import { B2_PRICES, forecaster } from "./forecast.js";

const GB = 1e9;
const start = new Date("2030-01-01T00:00:00Z");

function set(schedule: ScheduleConfig = { every: "7d" }): SetConfig {
	return {
		sources: [],
		destination: { type: "fs", path: "/" },
		retention: { days: 90, mode: "compliance" },
		schedule,
		planner: { strategy: "auto", missedRuns: 0, slackDays: 14 },
	};
}

function forecast(weeklyChangeRate: number, prices = B2_PRICES, schedule?: ScheduleConfig) {
	return forecaster.forecast({
		start,
		periodDays: 364,
		weeklyChangeRate,
		bytes: 100 * GB,
		packBytes: 16 * 1024 * 1024,
		set: set(schedule),
		prices,
	});
}

describe("cost forecast", () => {
	it("replays the schedule: 52 weekly runs over a year", () => {
		expect(forecast(0.01).assumptions.runs).toBe(52);
		expect(forecast(0.01).strategies.map((s) => s.storedBytes.length)).toEqual([52, 52]);
	});

	it("replays a cron schedule's own run times, whenever it is asked: a monthly cron is 12 runs", () => {
		const monthly = forecast(0.01, B2_PRICES, { cron: "0 3 1 * *" });
		expect(monthly.assumptions.runs).toBe(12);
		// Asked mid-month, the runs are still the first of each month.
		const asked = forecaster.forecast({
			start: new Date("2030-08-15T00:00:00Z"),
			periodDays: 364,
			weeklyChangeRate: 0.01,
			bytes: GB,
			packBytes: 16 * 1024 * 1024,
			set: set({ cron: "0 3 1 * *" }),
		});
		expect(asked.assumptions.runs).toBe(12);
		// No table given: the plugin's own, B2's list prices.
		expect(asked.assumptions.prices).toBe(B2_PRICES);
		expect(asked.strategies[0]?.storedBytes[0]?.at).toBe("2030-09-01T03:00:00.000Z");
	});

	it("extend deletes what it repacked: peak storage stays below what was uploaded", () => {
		const [extend] = forecast(0.05).strategies;
		expect(extend?.deleteCalls).toBeGreaterThan(0);
		expect(extend?.peakStoredBytes ?? 0).toBeLessThan(extend?.uploadBytes ?? 0);
	});

	it("extend uploads only changes and pays in lock calls; re-include re-uploads everything about every retention period", () => {
		const [extend, reinclude] = forecast(0.01).strategies;
		// 100 GB once, then 1 % a week for 51 weeks.
		expect(extend?.uploadBytes).toBeCloseTo(100 * GB * (1 + 0.01 * 51), -7);
		expect(extend?.lockCalls).toBeGreaterThan(0);
		expect(reinclude?.lockCalls).toBe(0);
		// Each copy lasts 90 days and is renewed one run before it lapses: about every 12 weeks,
		// with the old versions older snapshots still need (about 13 weeks of 1 %).
		expect((reinclude?.uploadBytes ?? 0) / GB).toBeGreaterThan(500);
		expect((reinclude?.uploadBytes ?? 0) / GB).toBeLessThan(700);
		// Re-include holds nearly two full copies while the old one's lock runs out.
		expect((reinclude?.peakStoredBytes ?? 0) / GB).toBeGreaterThan(180);
		expect((extend?.peakStoredBytes ?? 0) / GB).toBeLessThan(160);
	});

	it("prices storage by GB-month and calls by their class", () => {
		const freeCalls = { name: "free calls", storagePerGbMonth: 0.01, classAPer10k: 0, classBPer10k: 0, classCPer1k: 0 };
		const free = forecast(0.01, freeCalls);
		const [extend] = free.strategies;
		expect(extend?.cost.transactions).toBe(0);
		// About 100–150 GB stored for 12 months at 1 cent per GB-month.
		expect(extend?.cost.storage).toBeGreaterThan(12);
		expect(extend?.cost.storage).toBeLessThan(19);
		const costlyCalls = forecast(0.01, { ...freeCalls, classAPer10k: 1 }).strategies[0];
		const classA = (costlyCalls?.putCalls ?? 0) + (costlyCalls?.lockCalls ?? 0) + (costlyCalls?.deleteCalls ?? 0);
		expect(classA).toBeGreaterThan(1000);
		expect(costlyCalls?.cost.transactions).toBeCloseTo(classA / 10_000, 1);
	});
});
