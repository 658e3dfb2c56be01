import { describe, expect, it } from "vitest";
import { daysApart } from "./output.js";

describe("daysApart", () => {
	it("shows two times to the minute, or finer where the minute would show them equal", () => {
		expect(daysApart("2030-01-01T10:00:00.000Z", "2030-01-02T10:00:00.000Z")).toEqual([
			"2030-01-01 10:00 UTC",
			"2030-01-02 10:00 UTC",
		]);
		expect(daysApart("2030-01-01T10:00:12.000Z", "2030-01-01T10:00:47.000Z")).toEqual([
			"2030-01-01 10:00:12 UTC",
			"2030-01-01 10:00:47 UTC",
		]);
		expect(daysApart("2030-01-01T10:00:12.250Z", "2030-01-01T10:00:12.900Z")).toEqual([
			"2030-01-01 10:00:12.250 UTC",
			"2030-01-01 10:00:12.900 UTC",
		]);
		expect(daysApart(null, "2030-01-01T10:00:00.000Z")).toEqual(["-", "2030-01-01 10:00 UTC"]);
	});
});
