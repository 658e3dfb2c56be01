import { describe, expect, it } from "vitest";
import { choosePacks } from "./check.js";

const packs = Array.from({ length: 40 }, (_, i) => `data/${i.toString(16).padStart(64, "0")}`);

describe("choosePacks", () => {
	it("reads the asked share rounded up, at least one pack for any share above zero", () => {
		const day = new Date("2027-03-01T12:00:00Z");
		expect(choosePacks(packs, 10, day)).toHaveLength(4);
		expect(choosePacks(packs, 0.1, day)).toHaveLength(1);
		expect(choosePacks(packs.slice(0, 2), 10, day)).toHaveLength(1);
		expect(choosePacks(packs, 0, day)).toEqual([]);
		expect(choosePacks(packs, 100, day)).toEqual(packs);
	});

	it("keeps its choice within a day and changes it across days", () => {
		const morning = choosePacks(packs, 25, new Date("2027-03-01T01:00:00Z"));
		expect(choosePacks(packs, 25, new Date("2027-03-01T23:00:00Z"))).toEqual(morning);
		const week = new Set<string>();
		for (let d = 1; d <= 7; d++) for (const key of choosePacks(packs, 25, new Date(`2027-03-0${d}T12:00:00Z`))) week.add(key);
		expect(week.size).toBeGreaterThan(morning.length);
	});
});
