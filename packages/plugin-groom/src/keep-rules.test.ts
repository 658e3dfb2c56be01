import type { SnapshotRef } from "@holdfast/core";
import { describe, expect, it } from "vitest";
import { decideKeep } from "./keep-rules.js";

const DAY = 86_400_000;
const now = new Date("2030-06-30T12:00:00Z");

/** One snapshot a day for `days` days before `now`, each protected `window` days. */
function daily(days: number, window = 7, tags: (i: number) => string[] = () => [], host = "h"): SnapshotRef[] {
	const prefix = host === "h" ? "s" : `${host}-`;
	return Array.from({ length: days }, (_, i) => {
		const time = new Date(now.getTime() - (days - i) * DAY);
		return {
			id: `${prefix}${String(i).padStart(3, "0")}`,
			key: `snapshots/${prefix}${i}`,
			snapshot: {
				v: 1,
				set: "main",
				host,
				time: time.toISOString(),
				paths: [],
				tree: "t",
				tags: tags(i),
				retention: { days: window, mode: "compliance" },
				protectUntil: new Date(time.getTime() + window * DAY).toISOString(),
				summary: { files: 0, dirs: 0, bytes: 0, skipped: 0, partial: false },
			},
		} as SnapshotRef;
	});
}

const kept = (refs: SnapshotRef[], config: Parameters<typeof decideKeep>[1]) =>
	decideKeep(refs, config, now)
		.filter((d) => d.keep)
		.map((d) => `${d.ref.id}:${d.keep}`);

describe("keep rules", () => {
	it("keeps what is inside its retention window, and lets the rest go", () => {
		const decisions = decideKeep(daily(30), { match: "retention" }, now);
		// s023 was taken exactly 7 days ago: its protection ends now, so it leaves.
		expect(decisions.filter((d) => d.keep).map((d) => d.ref.id)).toEqual(["s029", "s028", "s027", "s026", "s025", "s024"]);
		expect(decisions.filter((d) => !d.keep)).toHaveLength(24);
	});

	it("keep-last and keep-within hold snapshots past their window", () => {
		expect(kept(daily(30), { match: "retention", keepLast: 9 })).toContain("s021:keep-last");
		expect(kept(daily(30), { match: "retention", keepLast: 9 })).not.toContain("s020:keep-last");
		const within = kept(daily(30), { match: "retention", keepWithin: "10d" });
		expect(within).toContain("s020:keep-within");
		expect(within.some((k) => k.startsWith("s019"))).toBe(false);
	});

	it("keep-daily, weekly, monthly and yearly keep the newest of each period", () => {
		const refs = daily(120, 1);
		const weekly = kept(refs, { match: "retention", keepWeekly: 3 }).filter((k) => k.endsWith("keep-weekly"));
		expect(weekly).toHaveLength(3);
		const monthly = kept(refs, { match: "retention", keepMonthly: 4 }).filter((k) => k.endsWith("keep-monthly"));
		// The newest snapshot of June, May, April and March.
		expect(monthly.map((k) => refs.find((r) => r.id === k.split(":")[0])?.snapshot.time.slice(0, 7))).toEqual([
			"2030-06",
			"2030-05",
			"2030-04",
			"2030-03",
		]);
		expect(kept(refs, { match: "retention", keepYearly: 5 }).filter((k) => k.endsWith("keep-yearly"))).toHaveLength(1);
		expect(kept(refs, { match: "retention", keepDaily: 5 }).filter((k) => k.endsWith("keep-daily"))).toEqual([
			"s119:keep-daily",
			"s118:keep-daily",
			"s117:keep-daily",
			"s116:keep-daily",
			"s115:keep-daily",
		]);
	});

	it("never lets the newest snapshot of a set go, even when its window has closed", () => {
		const refs = daily(10, 1);
		const decisions = decideKeep(refs, { match: "retention" }, new Date(now.getTime() + 5 * DAY));
		expect(decisions.filter((d) => d.keep).map((d) => `${d.ref.id}:${d.keep}`)).toEqual(["s009:newest of its host in the set"]);
		expect(decisions.filter((d) => !d.keep)).toHaveLength(9);
	});

	it("keeps each host's newest snapshot, however long ago another host last backed up", () => {
		// A laptop that stopped 20 days ago, and a server that backs up daily: all windows closed for the laptop.
		const laptop = daily(10, 1, () => [], "laptop").map((r) => ({
			...r,
			snapshot: { ...r.snapshot, time: new Date(new Date(r.snapshot.time).getTime() - 20 * DAY).toISOString() },
		}));
		const server = daily(30, 1, () => [], "server");
		const keeps = kept([...laptop, ...server], { match: "retention" });
		expect(keeps).toContain("laptop-009:newest of its host in the set");
		expect(keeps.filter((k) => k.startsWith("laptop-"))).toHaveLength(1);
	});

	it("counts keep-last per host, not across the fleet", () => {
		const refs = [...daily(10, 1, () => [], "a"), ...daily(10, 1, () => [], "b")];
		const keeps = kept(refs, { match: "retention", keepLast: 3 });
		expect(keeps.filter((k) => k.startsWith("a-"))).toEqual(["a-009:keep-last", "a-008:keep-last", "a-007:keep-last"]);
		expect(keeps.filter((k) => k.startsWith("b-"))).toEqual(["b-009:keep-last", "b-008:keep-last", "b-007:keep-last"]);
	});

	it("keep by tag", () => {
		const refs = daily(30, 1, (i) => (i === 3 ? ["before-migration"] : []));
		expect(kept(refs, { match: "retention", keepTags: ["before-migration"] })).toContain("s003:keep-tag");
	});
});
