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

	it("no schedule, no next run", () => {
		expect(scheduleOf(undefined)).toBeUndefined();
	});
});
