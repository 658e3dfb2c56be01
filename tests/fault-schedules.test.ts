import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DAY_MS } from "@holdfast/core";
import { afterAll, describe, expect, it, onTestFailed } from "vitest";
import { B2StrictProxy, REQUEST_CLASSES, type RequestClass } from "../packages/plugin-b2/src/test-support/b2-strict-proxy.js";
import { s3, uniqueBucket } from "../packages/plugin-b2/src/test-support/s3-subject.js";
import type { CliResult } from "./support/cli.js";
import { FaultSchedule } from "./support/fault-schedule.js";
import {
	ALARMING,
	cliIn,
	errorLines,
	expectSuccessOrUnreachable,
	forgetCatalog,
	writeSourceTree,
} from "./support/faulted-cli.js";
import { tempDir } from "./support/harness.js";
import { type Opener, projectEngine } from "./support/project-session.js";
import { describeTree } from "./support/trees.js";

const proxies: B2StrictProxy[] = [];
/** The proxies the seeded schedules ran behind (not the outage tests', which fault every class at once). */
const scheduled: B2StrictProxy[] = [];
afterAll(async () => {
	for (const proxy of proxies) await proxy.stop();
});

/**
 * How far ahead of the real clock the locks of a run's writes end, at least. A run is dated a
 * day before its start (--now), so its one-day locks end this soon on the store's own clock and
 * a groom can really delete within the test. The store refuses a retain-until already past, so
 * one attempt must finish within it, also on a loaded machine: longer than the 20 s retry budget
 * the schedules run with (a run that gives up as unreachable spends it), and never under four
 * times the slowest attempt so far.
 */
const MIN_LOCK_AHEAD_MS = 40_000;

/**
 * A dozen CLI runs of a few seconds each plus the waits, several times over on a two-core
 * machine shared with other test runs: generous, since a run cut short proves nothing.
 */
const SLOW_MACHINE_MS = 360_000;

interface World {
	readonly dir: string;
	readonly proxy: B2StrictProxy;
	readonly run: ReturnType<typeof cliIn>;
	/** The engine a command in the folder opens, in this process: for the steps with the store healthy. */
	readonly engine: Opener;
	readonly env: NodeJS.ProcessEnv;
}

async function world(prefix: string, budget: string): Promise<World> {
	const proxy = await new B2StrictProxy(s3?.endpoint as string).start();
	proxies.push(proxy);
	const dir = await tempDir(`holdfast-${prefix}-`);
	await mkdir(join(dir, "data"));
	const bucket = uniqueBucket(prefix);
	await writeFile(
		join(dir, "holdfast.yaml"),
		`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-b2", "@holdfast/plugin-retention-planner", "@holdfast/plugin-groom"]
sets:
  faulty:
    sources: [{ type: fs, path: ./data }]
    destination: { type: b2, endpoint: "${proxy.endpoint}", bucket: ${bucket}, keyIdEnv: TEST_KEY_ID, secretEnv: TEST_SECRET }
    retention: { days: 1, mode: compliance }
    planner: { slackDays: 0 }
    groom: { graceHours: 0 }
    packSizeMiB: 1
`,
	);
	const env = {
		TEST_KEY_ID: s3?.accessKeyId,
		TEST_SECRET: s3?.secretAccessKey,
		...(budget ? { HOLDFAST_RETRY_BUDGET: budget } : {}),
		HOLDFAST_SCRYPT_N: "1024",
	};
	return { dir, proxy, run: cliIn(dir, env), engine: projectEngine(dir, env), env };
}

const at = (time: Date) => ["--now", time.toISOString()];

/**
 * Runs `args` under the schedule; on an (allowed) unreachable failure, runs it again with the
 * store healthy. `run` starts one attempt (a dated one for runs whose locks a groom waits out).
 */
async function underFaults(
	w: World,
	schedule: FaultSchedule,
	args: string[],
	log: string[],
	run: (args: string[]) => Promise<CliResult> = w.run,
): Promise<CliResult> {
	w.proxy.inject(schedule);
	const result = await run(args);
	w.proxy.recover();
	log.push(`${args.join(" ")}: exit ${result.code}${result.code ? ` ${errorLines(result.stderr)[0]}` : ""}`);
	if (expectSuccessOrUnreachable(result, args.join(" "))) return result;
	const again = await run(args);
	expect(again.code, `${args.join(" ")} with the store healthy: ${again.stderr}`).toBe(0);
	return again;
}

/**
 * Runs of `w` dated a day before they start plus the lock-ahead, each attempt anew: `locksEnd`
 * is when the last of their locks ends on the store's clock, `lastNow` the date the last one ran at.
 */
function datedRuns(w: World) {
	let slowestMs = 0;
	const runs = {
		locksEnd: 0,
		lastNow: new Date(0),
		async run(args: string[]): Promise<CliResult> {
			const began = Date.now();
			const until = began + Math.max(MIN_LOCK_AHEAD_MS, 4 * slowestMs);
			runs.lastNow = new Date(until - DAY_MS);
			const result = await w.run([...args, ...at(runs.lastNow)]);
			slowestMs = Math.max(slowestMs, Date.now() - began);
			expect(Date.now(), `${args[0]} outlasted the locks it wrote (${until - began} ms ahead)`).toBeLessThan(until);
			runs.locksEnd = Math.max(runs.locksEnd, until);
			return result;
		},
	};
	return runs;
}

async function expectRestoresExactly(w: World, result: CliResult, target: string): Promise<void> {
	expect(result.code, result.stderr).toBe(0);
	await expectSameData(w, target);
}

async function expectSameData(w: World, target: string): Promise<void> {
	expect(await describeTree(join(w.dir, target, "data"))).toEqual(await describeTree(join(w.dir, "data")));
}

async function snapshotCount(result: CliResult): Promise<number> {
	expect(result.code, result.stderr).toBe(0);
	return (JSON.parse(result.stdout) as unknown[]).length;
}

/** With the store healthy: the latest snapshot restores exactly and check --read-data finds nothing wrong, read from the store alone. */
async function expectWhole(w: World, target: string): Promise<void> {
	await forgetCatalog(w.dir);
	const restored = await w.engine((engine) => engine.restore("latest", { target: join(w.dir, target) }));
	expect(restored.summary.partial).toBeFalsy();
	await expectSameData(w, target);
	const check = await w.engine((engine) => engine.check(undefined, { readDataPercent: 100 }));
	expect(check.errors).toEqual([]);
}

describe.skipIf(!s3)("seeded fault schedules and outages on every request class", () => {
	it.concurrent(
		"outages of 5 s and of half the budget are ridden out; one longer than the budget fails every command as unreachable, and costs nothing",
		async () => {
			const w = await world("outage", "");
			const data = join(w.dir, "data");
			await writeSourceTree(data, 9);
			await w.engine((engine) => engine.init());
			const outage = (forMs: number, after: number) =>
				new FaultSchedule(9, { classes: [], outages: [{ atRequest: w.proxy.stats.requests + after, forMs }] });
			const log: string[] = [];
			onTestFailed(() => console.log(`${log.join("\n")}\ninjected: ${JSON.stringify(w.proxy.stats.injected.slice(0, 80))}`));

			// The issue's 5 s outage, a few requests into the first backup, against the default budget.
			const short = outage(5_000, 4);
			log.push(short.describe());
			w.proxy.inject(short);
			const ridden = await w.run(["backup"]);
			expect(ridden.code, ridden.stderr).toBe(0);
			expect(w.proxy.stats.faultsInjected).toBeGreaterThan(0);

			// The issue's 60 s outage against the default two-minute budget, scaled down to 10 s against 20 s: the
			// proportion is what is tested, and 10 s outlasts the first five backoffs (at most 7.75 s together).
			await writeSourceTree(data, 9, 1);
			const half = outage(10_000, 5);
			log.push(half.describe());
			w.proxy.inject(half);
			const began = Date.now();
			const longer = await w.run(["backup"], { HOLDFAST_RETRY_BUDGET: "20s" });
			expect(longer.code, longer.stderr).toBe(0);
			expect(Date.now() - began).toBeGreaterThanOrEqual(10_000);

			// The store goes away a few requests into the third backup, for longer than a 3 s budget.
			await writeSourceTree(data, 9, 2);
			const long = outage(600_000, 6);
			log.push(long.describe());
			w.proxy.inject(long);
			const expectUnreachable = async (run: World["run"], args: string[]) => {
				const failed = await run(args, { HOLDFAST_RETRY_BUDGET: "3s" });
				expect(failed.code, `${args.join(" ")}: ${failed.stdout}${failed.stderr}`).toBe(1);
				expect(errorLines(failed.stderr), args.join(" ")).toEqual([expect.stringMatching(/^holdfast: .* is unreachable: /)]);
				expect(failed.stderr).not.toMatch(ALARMING);
			};
			await expectUnreachable(w.run, ["backup"]);
			// The others fail at their first read of the store, so they wait out their budgets side by side:
			// `snapshots` beside the catalog, the rest each in a folder with the same config and no catalog.
			const readers = [["restore", "latest", "--target", "r"], ["check", "--read-data"], ["groom"]].map(async (args, i) => {
				const dir = join(w.dir, `reader-${i}`);
				await mkdir(dir);
				await copyFile(join(w.dir, "holdfast.yaml"), join(dir, "holdfast.yaml"));
				await expectUnreachable(cliIn(dir, w.env), args);
			});
			await Promise.all([expectUnreachable(w.run, ["snapshots"]), ...readers]);
			await forgetCatalog(w.dir);
			w.proxy.recover();
			// Nothing was lost, no half-written snapshot is listed, and the next backup completes.
			expect(await w.engine((engine) => engine.snapshots())).toHaveLength(2);
			const backup = await w.engine((engine) => engine.backup());
			expect(backup.partial).toBe(false);
			expect(await w.engine((engine) => engine.snapshots())).toHaveLength(3);
			await expectWhole(w, "r2");
		},
		SLOW_MACHINE_MS,
	);

	const seeds = [101, 202, 404];
	it.concurrent.each(seeds)(
		"seed %i: every command succeeds with the right data or fails as unreachable",
		async (seed) => {
			const schedule = new FaultSchedule(seed);
			const w = await world(`sched${seed}`, "20s");
			scheduled.push(w.proxy);
			const log: string[] = [];
			onTestFailed(() => {
				console.log(
					`${schedule.describe()}\n${log.join("\n")}\ninjected: ${JSON.stringify(w.proxy.stats.injected.slice(0, 200))}`,
				);
			});
			const data = join(w.dir, "data");
			await writeSourceTree(data, seed);

			const dated = datedRuns(w);
			await underFaults(w, schedule, ["init"], log, dated.run);
			await underFaults(w, schedule, ["backup"], log, dated.run);
			await writeSourceTree(data, seed, 1);
			// Two hours on, the second backup extends the first one's locks it reuses (PutObjectRetention).
			await underFaults(w, schedule, ["backup", ...at(new Date(dated.lastNow.getTime() + 2 * 3_600_000))], log);

			await forgetCatalog(w.dir);
			expect(await snapshotCount(await underFaults(w, schedule, ["snapshots", "--json"], log))).toBe(2);
			await forgetCatalog(w.dir);
			await expectRestoresExactly(w, await underFaults(w, schedule, ["restore", "latest", "--target", "r1"], log), "r1");
			await forgetCatalog(w.dir);
			const check = await underFaults(w, schedule, ["check", "--read-data", "--json"], log);
			expect(JSON.parse(check.stdout).errors).toEqual([]);

			// Past the first snapshot's locks on the store's clock: grooming forgets it, marks what only it needs, then deletes.
			await new Promise((resolve) => setTimeout(resolve, Math.max(0, dated.locksEnd + 1000 - Date.now())));
			const marking = JSON.parse((await underFaults(w, schedule, ["groom", "--json"], log)).stdout);
			const deleting = JSON.parse((await underFaults(w, schedule, ["groom", "--json"], log)).stdout);
			expect([...marking.deleted.keys, ...deleting.deleted.keys].length).toBeGreaterThan(0);

			// Faults off: what is left is whole.
			await forgetCatalog(w.dir);
			expect(await w.engine((engine) => engine.snapshots())).toHaveLength(1);
			await expectWhole(w, "r2");
			expect(w.proxy.stats.rejected).toEqual([]);
		},
		SLOW_MACHINE_MS,
	);

	it("together, the schedules faulted every request class", () => {
		const faulted = new Set(scheduled.flatMap((p) => p.stats.injected.map((f) => f.class)));
		const missing = REQUEST_CLASSES.filter((c) => !faulted.has(c as RequestClass));
		expect(missing).toEqual([]);
	});
});
