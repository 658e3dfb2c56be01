import { describe, expect, it } from "vitest";
import { scheduleOf } from "./schedule.js";

describe("schedules", () => {
	it("an interval adds itself to the last run", () => {
		const schedule = scheduleOf({ every: "7d" });
		expect(schedule?.next(new Date("2030-01-01T02:00:00Z")).toISOString()).toBe("2030-01-08T02:00:00.000Z");
		expect(scheduleOf({ every: "12h" })?.next(new Date("2030-01-01T00:00:00Z")).toISOString()).toBe("2030-01-01T12:00:00.000Z");
	});

	it("a cron expression runs in its time zone, across a daylight-saving change", () => {
		// Sundays at 02:30 in Berlin: CET (UTC+1) in March before the change, CEST (UTC+2) after.
		const schedule = scheduleOf({ cron: "30 2 * * 0", tz: "Europe/Berlin" });
		expect(schedule?.next(new Date("2030-03-20T00:00:00Z")).toISOString()).toBe("2030-03-24T01:30:00.000Z");
		expect(schedule?.next(new Date("2030-04-01T00:00:00Z")).toISOString()).toBe("2030-04-07T00:30:00.000Z");
	});

	it("one schedule per set's config, whose remembered answers are croner's", () => {
		const config = { cron: "0 2 * * *", tz: "Europe/Berlin" };
		const schedule = scheduleOf(config);
		expect(scheduleOf(config)).toBe(schedule);
		// A config of its own (another set, or the same text loaded again) answers alike.
		const fresh = scheduleOf({ ...config });
		expect(fresh).not.toBe(schedule);
		let at = new Date("2030-03-28T00:00:00Z");
		const runs: string[] = [];
		for (let i = 0; i < 5; i++) runs.push((at = schedule?.next(at) as Date).toISOString());
		// Asked again, and handed a Date the caller may change: the same answers.
		const again = schedule?.next(new Date("2030-03-28T00:00:00Z")) as Date;
		again.setTime(0);
		at = new Date("2030-03-28T00:00:00Z");
		for (const run of runs) expect((at = fresh?.next(at) as Date).toISOString()).toBe(run);
		expect(schedule?.next(new Date("2030-03-28T00:00:00Z")).toISOString()).toBe(runs[0]);
		// Across the change to summer time: 02:00 Berlin is 01:00 UTC before it, none on the day (03:00 runs), 00:00 UTC after.
		expect(runs).toEqual([
			"2030-03-28T01:00:00.000Z",
			"2030-03-29T01:00:00.000Z",
			"2030-03-30T01:00:00.000Z",
			"2030-03-31T01:00:00.000Z",
			"2030-04-01T00:00:00.000Z",
		]);
	});

	it("no schedule, no next run", () => {
		expect(scheduleOf(undefined)).toBeUndefined();
	});
});
