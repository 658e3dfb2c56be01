import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DAY_MS } from "@holdfast/core";
import { afterAll, describe, expect, it, onTestFailed } from "vitest";
import { B2StrictProxy, type ProxiedRequest } from "../packages/plugin-b2/src/test-support/b2-strict-proxy.js";
import { s3, uniqueBucket } from "../packages/plugin-b2/src/test-support/s3-subject.js";
import { startHoldfast } from "./support/cli.js";
import { writeSourceTree } from "./support/faulted-cli.js";
import { tempDir } from "./support/harness.js";
import { type Opener, projectEngine } from "./support/project-session.js";
import { describeTree } from "./support/trees.js";
import { prng } from "./support/world.js";

const KILL_SWITCH = new URL("./support/kill-switch.mjs", import.meta.url).href;
const HOUR_MS = 3_600_000;
const FAST = { HOLDFAST_SCRYPT_N: "1024" };
/** About twenty runs of a few seconds each (the killed ones spawned), several times over on a two-core machine shared with other test runs. */
const SLOW_MACHINE_MS = 360_000;

/** Where a run kills itself: before or after the n-th rename (a file written) or removal whose path matches. */
interface KillPoint {
	readonly op: "rename" | "rm";
	readonly match: string;
	readonly nth: number;
	readonly when: "before" | "after";
}

interface Killed {
	readonly signal: NodeJS.Signals | null;
	readonly code: number | null;
	readonly stderr: string;
}

/**
 * Runs the CLI until it is killed with SIGKILL: by itself at `point` (the kill switch), or
 * by `killer`, which is handed the process once it started.
 */
let killRuns = 0;

function killedRun(
	dir: string,
	args: string[],
	env: NodeJS.ProcessEnv,
	point?: KillPoint,
	killer?: (kill: () => void) => void,
): Promise<Killed> {
	const child = startHoldfast(dir, args, {
		...env,
		...(point
			? {
					NODE_OPTIONS: `--import=${KILL_SWITCH}`,
					// The count is kept in a folder of the run's own, shared by every thread that renames.
					HOLDFAST_TEST_KILL: JSON.stringify({ ...point, counter: join(dir, `.kill-count-${++killRuns}`) }),
				}
			: {}),
	});
	let stderr = "";
	child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
	child.stdout.resume();
	killer?.(() => child.kill("SIGKILL"));
	return new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stderr })));
}

function expectKilled(killed: Killed, what: string): void {
	expect(killed.signal, `${what} was to be killed, but ended on its own (exit ${killed.code}): ${killed.stderr}`).toBe("SIGKILL");
}

async function expectBackup(open: Opener, what: string): Promise<void> {
	const result = await open((engine) => engine.backup());
	expect(result.snapshot, what).toBeDefined();
	expect(result.partial, what).toBe(false);
}

async function expectCleanCheck(open: Opener, what: string) {
	const report = await open((engine) => engine.check(undefined, { readDataPercent: 100 }));
	expect(report.errors, what).toEqual([]);
	return report;
}

async function expectExactRestore(dir: string, open: Opener, target: string): Promise<void> {
	const { summary } = await open((engine) => engine.restore("latest", { target: join(dir, target) }));
	expect(summary.partial, `restore into ${target}`).toBeFalsy();
	expect(await describeTree(join(dir, target, "data")), target).toEqual(await describeTree(join(dir, "data")));
}

function pick(random: () => number, from: number, to: number): number {
	return from + Math.floor(random() * (to - from + 1));
}

const config = (
	destination: string,
) => `plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-b2", "@holdfast/plugin-retention-planner", "@holdfast/plugin-groom"]
sets:
  killed:
    sources: [{ type: fs, path: ./data }]
    destination: ${destination}
    retention: { days: 1, mode: compliance }
    planner: { slackDays: 0 }
    groom: { graceHours: 0, keepLast: 1 }
    packSizeMiB: 1
`;

const proxies: B2StrictProxy[] = [];
afterAll(async () => {
	for (const proxy of proxies) await proxy.stop();
});

/** Kills the run at the n-th request the proxy sees of this class under this prefix. */
function atRequest(proxy: B2StrictProxy, kind: ProxiedRequest["class"], prefix: string, nth: number) {
	return (kill: () => void) => {
		let seen = 0;
		const stop = proxy.onRequest((request) => {
			if (request.class !== kind || !request.key.startsWith(prefix) || ++seen !== nth) return;
			kill();
			stop();
		});
	};
}

describe("kill -9 at seeded moments", () => {
	it.concurrent.each([31])(
		"local, seed %i: backup, restore and groom complete on the next run; grooming leaves nothing behind",
		async (seed) => {
			const random = prng(seed);
			const dir = await tempDir("holdfast-kill-fs-");
			await mkdir(join(dir, "data"));
			await writeFile(join(dir, "holdfast.yaml"), config("{ type: fs, path: ./repo }"));
			const start = Date.parse("2030-01-06T02:00:00Z");
			const log: string[] = [];
			onTestFailed(() => console.log(`seed ${seed}\n${log.join("\n")}`));
			const at = (ms: number) => ["--now", new Date(start + ms).toISOString()];
			// Only the killed runs are commands of their own: the runs after them open what the kills left, in this process.
			const runAt = (ms: number) => projectEngine(dir, FAST, new Date(start + ms));
			const killAt = (ms: number, args: string[], point: KillPoint) => {
				log.push(`${args.join(" ")} at +${ms / HOUR_MS} h killed ${JSON.stringify(point)}`);
				return killedRun(dir, [...args, ...at(ms)], FAST, point);
			};
			const when = () => (random() < 0.5 ? "before" : "after");

			await runAt(0)((engine) => engine.init());
			await writeSourceTree(join(dir, "data"), seed);
			await expectBackup(runAt(0), "first backup");

			// Backups killed as they write packs, each followed by one that must complete and restore exactly.
			for (let round = 1; round <= 2; round++) {
				await writeSourceTree(join(dir, "data"), seed, round);
				const time = round * HOUR_MS;
				const point: KillPoint = { op: "rename", match: "/objects/data/.*\\.data$", nth: pick(random, 1, 2), when: when() };
				expectKilled(await killAt(time, ["backup"], point), "backup");
				await expectBackup(runAt(time + 60_000), `backup after kill ${round}`);
				await expectCleanCheck(runAt(time + 120_000), `after kill ${round}`);
				await expectExactRestore(dir, runAt(time + 120_000), `r${round}`);
			}

			// A restore killed as it puts files in place; the same command again completes it.
			const restorePoint: KillPoint = { op: "rename", match: "/rk/", nth: pick(random, 1, 10), when: when() };
			expectKilled(await killAt(3 * HOUR_MS, ["restore", "latest", "--target", "rk"], restorePoint), "restore");
			await expectExactRestore(dir, runAt(3 * HOUR_MS), "rk");

			// Every snapshot's window has passed; the newest is kept. A groom marks, the next deletes and is killed.
			await runAt(3 * DAY_MS)((engine) => engine.groom());
			const due = await runAt(3 * DAY_MS + HOUR_MS)((engine) => engine.groom(undefined, { dryRun: true }));
			log.push(`due: ${due.deleted.keys.length} objects`);
			expect(due.deleted.keys.length).toBeGreaterThan(2);
			const groomPoint: KillPoint = {
				op: "rm",
				match: "/objects/.*\\.data$",
				nth: pick(random, 1, Math.min(6, due.deleted.keys.length - 1)),
				when: when(),
			};
			expectKilled(await killAt(3 * DAY_MS + HOUR_MS, ["groom"], groomPoint), "groom");
			const completing = await runAt(3 * DAY_MS + HOUR_MS)((engine) => engine.groom());
			log.push(`completing groom deleted ${completing.deleted.keys.length}`);
			await expectCleanCheck(runAt(3 * DAY_MS + HOUR_MS), "after the killed groom");

			// Once every lock has ended, two grooms (a mark, a deletion) leave nothing that no snapshot needs.
			await runAt(6 * DAY_MS)((engine) => engine.groom());
			await runAt(6 * DAY_MS + HOUR_MS)((engine) => engine.groom());
			const report = await expectCleanCheck(runAt(6 * DAY_MS + 2 * HOUR_MS), "at the end");
			expect(report.reclaimable.objects).toBe(0);
			await expectExactRestore(dir, runAt(6 * DAY_MS + 2 * HOUR_MS), "r-end");
		},
		SLOW_MACHINE_MS,
	);

	it.concurrent("an init killed between its config and its first key file: the next init completes", async () => {
		const dir = await tempDir("holdfast-kill-init-");
		await mkdir(join(dir, "data"));
		await writeFile(join(dir, "holdfast.yaml"), config("{ type: fs, path: ./repo }"));
		await writeSourceTree(join(dir, "data"), 51);
		const run = projectEngine(dir, FAST);
		const point: KillPoint = { op: "rename", match: "/objects/keys/.*\\.data$", nth: 1, when: "before" };
		expectKilled(await killedRun(dir, ["init"], FAST, point), "init");
		expect((await run((engine) => engine.init())).created, "init after the kill creates the repository").toBe(true);
		await expectBackup(run, "backup");
		await expectCleanCheck(run, "after the killed init");
		await expectExactRestore(dir, run, "r");
	});

	(s3 ? it.concurrent : it.skip)(
		"on S3: backup, restore and groom complete on the next run; grooming leaves only what locks hold",
		async () => {
			const seed = 41;
			const random = prng(seed);
			const proxy = await new B2StrictProxy(s3?.endpoint as string).start();
			proxies.push(proxy);
			const dir = await tempDir("holdfast-kill-s3-");
			await mkdir(join(dir, "data"));
			await writeFile(
				join(dir, "holdfast.yaml"),
				config(
					`{ type: b2, endpoint: "${proxy.endpoint}", bucket: ${uniqueBucket("kill")}, keyIdEnv: TEST_KEY_ID, secretEnv: TEST_SECRET }`,
				),
			);
			const env = { ...FAST, TEST_KEY_ID: s3?.accessKeyId, TEST_SECRET: s3?.secretAccessKey, HOLDFAST_RETRY_BUDGET: "20s" };
			const log: string[] = [];
			onTestFailed(() => console.log(`seed ${seed}\n${log.join("\n")}`));
			// Each writing run is dated a day before its start plus `lockAhead`, so its one-day locks end that soon
			// on the store's clock and the grooms below really delete. The store refuses a retain-until already past,
			// so the run must finish within it: a budget of three times the slowest run so far, never under 20 s
			// (the runs take a few seconds; only the killed ones are commands of their own).
			let slowestRunMs = 0;
			let locksEnd = 0;
			const lockAhead = () => Math.max(20_000, 3 * slowestRunMs);
			const run = projectEngine(dir, env);
			const writing = async <T>(what: string, start: (now: Date) => Promise<T>): Promise<T> => {
				const began = Date.now();
				const until = began + lockAhead();
				const result = await start(new Date(until - DAY_MS));
				slowestRunMs = Math.max(slowestRunMs, Date.now() - began);
				expect(Date.now(), `${what} outlasted the locks it wrote (${until - began} ms ahead)`).toBeLessThan(until);
				locksEnd = Math.max(locksEnd, until);
				return result;
			};
			const dated = (now: Date) => projectEngine(dir, env, now);

			await writing("init", (now) => dated(now)((engine) => engine.init()));
			await writeSourceTree(join(dir, "data"), seed);
			await writing("first backup", (now) => expectBackup(dated(now), "first backup"));
			await writeSourceTree(join(dir, "data"), seed, 1);
			// The change makes one or two data packs, by how its blobs meet in packs, and one tree pack:
			// two PUTs under data/ are certain, a third is not.
			const putAt = pick(random, 1, 2);
			log.push(`backup killed at PUT ${putAt} of a pack`);
			const killAtPut = atRequest(proxy, "put", "data/", putAt);
			const killed = await writing("killed backup", (now) =>
				killedRun(dir, ["backup", "--now", now.toISOString()], env, undefined, killAtPut),
			);
			expectKilled(killed, "backup");
			await writing("backup after the kill", (now) => expectBackup(dated(now), "backup after the kill"));
			await expectCleanCheck(run, "after the killed backup");
			await expectExactRestore(dir, run, "r1");

			const restorePoint: KillPoint = {
				op: "rename",
				match: "/rk/",
				nth: pick(random, 1, 10),
				when: random() < 0.5 ? "before" : "after",
			};
			log.push(`restore killed ${JSON.stringify(restorePoint)}`);
			expectKilled(await killedRun(dir, ["restore", "latest", "--target", "rk"], env, restorePoint), "restore");
			await expectExactRestore(dir, run, "rk");

			// Past the backups' locks on the store's clock: a groom marks, the next deletes and is killed.
			await new Promise((resolve) => setTimeout(resolve, Math.max(0, locksEnd + 3000 - Date.now())));
			await run((engine) => engine.groom());
			const due = await run((engine) => engine.groom(undefined, { dryRun: true }));
			log.push(`due: ${JSON.stringify(due.deleted.keys)}`);
			expect(due.deleted.keys.length).toBeGreaterThan(2);
			const deleteAt = pick(random, 1, Math.min(6, due.deleted.keys.length - 1));
			log.push(`groom killed at DELETE ${deleteAt}`);
			expectKilled(await killedRun(dir, ["groom"], env, undefined, atRequest(proxy, "delete", "", deleteAt)), "groom");
			const completing = await run((engine) => engine.groom());
			log.push(`completing groom: ${JSON.stringify(completing.deleted.keys)}`);
			const report = await expectCleanCheck(run, "after the killed groom");
			await expectExactRestore(dir, run, "r-end");
			// What no snapshot needs now is held by its lock alone (the grooms' own index objects, locked a day on the
			// store's clock): a groom once those locks end would delete every one of them.
			const left = await run((engine) => engine.groom(undefined, { dryRun: true }));
			log.push(`left: reclaimable ${report.reclaimable.objects}, ${JSON.stringify(left.held)}`);
			expect(left.deleted.keys).toEqual([]);
			expect(left.held.map((h) => h.reason)).toEqual(Array(report.reclaimable.objects).fill("lock"));
			const later = dated(new Date(Date.now() + 2 * DAY_MS));
			const once = await later((engine) => engine.groom(undefined, { dryRun: true }));
			expect(once.deleted.objects).toBe(report.reclaimable.objects);
			expect(once.held).toEqual([]);
		},
		SLOW_MACHINE_MS,
	);
});
