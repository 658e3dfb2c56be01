import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { holdfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";
import { projectEngine } from "./support/project-session.js";
import { pseudoRandom } from "./support/trees.js";

const TIERS = "tiers: [{ every: week, days: 90 }, { every: month, days: 365 }, { every: year, days: 2555 }]";

function config(retention = `{ days: 30, mode: compliance, ${TIERS} }`) {
	return `plugins:
  - "@holdfast/plugin-fs-source"
  - "@holdfast/plugin-fs-destination"
  - "@holdfast/plugin-retention-planner"
  - "@holdfast/plugin-groom"
catalog: sqlite://./.holdfast/catalog.sqlite
password: { env: HOLDFAST_PASSWORD }
sets:
  docs:
    sources:
      - { type: fs, path: ./data }
    destination: { type: fs, path: ./repo }
    retention: ${retention}
    schedule: { cron: "0 2 * * *", tz: Europe/Berlin }
    groom: { match: retention }
`;
}

interface Listed {
	time: string;
	tier: string | null;
	retentionDays: number;
	protectUntil: string;
}

// 02:00 in Berlin: New Year's Day, two ordinary days, the first Monday, the first of February.
const RUNS = [
	"2030-01-01T01:00:00Z",
	"2030-01-02T01:00:00Z",
	"2030-01-06T01:00:00Z",
	"2030-01-07T01:00:00Z",
	"2030-02-01T01:00:00Z",
];

let dir: string;
beforeAll(async () => {
	dir = await tempDir("holdfast-cli-tiers-");
	await mkdir(join(dir, "data"));
	await writeFile(join(dir, "holdfast.yaml"), config());
	// The runs are made in this process: what the tests read is the commands that show and plan them.
	await projectEngine(dir, {}, new Date(RUNS[0] as string))((engine) => engine.init());
	for (const [i, at] of RUNS.entries()) {
		await writeFile(join(dir, "data", `day${i}.bin`), pseudoRandom(20_000, i + 1));
		const result = await projectEngine(dir, {}, new Date(at))((engine) => engine.backup());
		expect(result.partial).toBe(false);
	}
});

describe("holdfast with retention tiers", () => {
	it("snapshots shows each snapshot's tier and its own protect-until", () => {
		const listed = JSON.parse(holdfast(dir, ["snapshots", "--json"]).stdout) as Listed[];
		expect(listed.map((s) => [s.tier, s.retentionDays])).toEqual([
			["year", 2555],
			[null, 30],
			[null, 30],
			["week", 90],
			["month", 365],
		]);
		for (const s of listed) {
			expect(new Date(s.protectUntil).getTime() - new Date(s.time).getTime()).toBe(s.retentionDays * 86_400_000);
		}
		const table = holdfast(dir, ["snapshots"]).stdout;
		expect(table).toMatch(/year, 2555 d\s+2036-12-30/);
		expect(table).toMatch(/base, 30 d\s+2030-02-01/);
	});

	it("plan says which tier the next run's snapshot opens", () => {
		// Monday, February 4th, 2030, 02:00 in Berlin: a new week; February was opened on the 1st.
		const result = holdfast(dir, ["plan", "--json", "--at", "2030-02-04T01:00:00Z", "--now", "2030-02-04T01:00:00Z"]);
		expect(result.code, result.stderr).toBe(0);
		expect(JSON.parse(result.stdout)).toMatchObject({ tier: "week", protectUntil: "2030-05-05T01:00:00.000Z" });
		const monday = holdfast(dir, ["plan", "--at", "2030-02-04T01:00:00Z", "--now", "2030-02-04T01:00:00Z"]).stdout;
		expect(monday).toMatch(/^the snapshot: protected until 2030-05-05 01:00 UTC \(the first of its week\); new objects/m);
		// Saturday the 2nd: its week was opened by Friday's snapshot, its month too.
		const saturday = holdfast(dir, ["plan", "--at", "2030-02-02T01:00:00Z", "--now", "2030-02-02T01:00:00Z"]).stdout;
		expect(saturday).toMatch(/^the snapshot: protected until 2030-03-04 01:00 UTC; new objects locked until/m);
	});

	it("check audits each snapshot against its own protect-until", () => {
		// Six weeks on, the dailies' 30 days are over; the week's, the month's and the year's are not.
		const result = holdfast(dir, ["check", "--json", "--now", "2030-03-15T03:00:00Z"]);
		expect(result.code, result.stderr).toBe(0);
		const report = JSON.parse(result.stdout);
		expect(report.immutability.snapshots).toBe(3);
		expect(report.immutability.covered).toBe(3);
		expect(report.immutability.gaps).toEqual([]);
	});

	it("plan --forecast prices the tiers against a flat policy of the longest tier", () => {
		const result = holdfast(dir, [
			"plan",
			"--forecast",
			"730d",
			"--change-rate",
			"5",
			"--rewrite",
			"80",
			"--now",
			RUNS[4] as string,
		]);
		expect(result.code, result.stderr).toBe(0);
		expect(result.stdout).toMatch(/^tiers: of the runs, .*kept 2555 d \(year\)/m);
		expect(result.stdout).toMatch(/^tiered\s+extend\s/m);
		expect(result.stdout).toMatch(/^flat 2555 d\s+extend\s/m);
		expect(result.stdout).toMatch(/^extend: the tiers save \d+\.\d\d USD \(\d+ %\) against keeping every snapshot 2555 days$/m);
		const report = JSON.parse(
			holdfast(dir, ["plan", "--forecast", "730d", "--rewrite", "80", "--json", "--now", RUNS[4] as string]).stdout,
		);
		expect(report.assumptions.rewriteShare).toBe(0.8);
		expect(report.flat.retentionDays).toBe(2555);
		expect(report.flat.strategies[0].cost.total).toBeGreaterThan(report.strategies[0].cost.total);
	});

	it("refuses a tier no longer than the base days, in one line", async () => {
		const bad = await tempDir("holdfast-cli-tiers-bad-");
		await writeFile(join(bad, "holdfast.yaml"), config("{ days: 30, tiers: [{ every: week, days: 20 }] }"));
		const result = holdfast(bad, ["config", "check"]);
		expect(result.code).toBe(2);
		expect(result.stderr.trim()).toBe(
			`holdfast: ${join(bad, "holdfast.yaml")}:13: sets.docs.retention.tiers[0].days: 20 is not longer than retention.days (30): a tier must keep its snapshots longer`,
		);
	});

	it("a later config without tiers shortens no promise already made: grooming keeps the tiered snapshots", async () => {
		await writeFile(join(dir, "holdfast.yaml"), config("{ days: 30, mode: compliance }"));
		const groom = holdfast(dir, ["groom", "--now", "2030-06-01T01:00:00Z"]);
		expect(groom.code, groom.stderr).toBe(0);
		const listed = JSON.parse(holdfast(dir, ["snapshots", "--json"]).stdout) as Listed[];
		// The dailies' and the week's windows closed; the month's and the year's did not.
		expect(listed.map((s) => s.tier)).toEqual(["year", "month"]);
		await writeFile(join(dir, "holdfast.yaml"), config());
	});
});
