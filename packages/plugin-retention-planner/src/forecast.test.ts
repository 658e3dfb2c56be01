import { B2_PRICES, DAY_MS } from "@holdfast/core";
import { describe, expect, it } from "vitest";
import { forecaster, runsOver } from "./forecast.js";

const GB = 1e9;
const start = new Date("2030-01-01T00:00:00Z");
const weekly = runsOver(start, 364, (d) => new Date(d.getTime() + 7 * DAY_MS));

function forecast(weeklyChangeRate: number, prices = B2_PRICES) {
	return forecaster.forecast({
		start,
		periodDays: 364,
		weeklyChangeRate,
		bytes: 100 * GB,
		packBytes: 16 * 1024 * 1024,
		retentionDays: 90,
		slackDays: 14,
		missedRuns: 0,
		runs: weekly,
		prices,
	});
}

describe("cost forecast", () => {
	it("replays the schedule: 52 weekly runs over a year", () => {
		expect(weekly).toHaveLength(52);
		expect(forecast(0.01).strategies.map((s) => s.storedBytes.length)).toEqual([52, 52]);
	});

	it("extend uploads only changes and pays in lock calls; re-include re-uploads everything about every retention period", () => {
		const [extend, reinclude] = forecast(0.01).strategies;
		// 100 GB once, then 1 % a week for 51 weeks.
		expect(extend?.uploadBytes).toBeCloseTo(100 * GB * (1 + 0.01 * 51), -7);
		expect(extend?.lockCalls).toBeGreaterThan(0);
		expect(reinclude?.lockCalls).toBe(0);
		// Each copy lasts 90 days and is renewed one run before it lapses: about every 12 weeks.
		expect((reinclude?.uploadBytes ?? 0) / GB).toBeGreaterThan(400);
		expect((reinclude?.uploadBytes ?? 0) / GB).toBeLessThan(600);
		// Re-include holds up to two full copies while the old one's lock runs out.
		expect((reinclude?.peakStoredBytes ?? 0) / GB).toBeGreaterThan(190);
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
