import { spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { HOLDFAST_BIN, holdfast, startHoldfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";
import { inProject } from "./support/project-session.js";

/** What a new user meets in the first week: every case here once misled, stayed silent or printed a stack trace. */

function config(extra = "", set = "") {
	return `plugins:
  - "@holdfast/plugin-fs-source"
  - "@holdfast/plugin-fs-destination"
  - "@holdfast/plugin-retention-planner"
  - "@holdfast/plugin-groom"
${extra}catalog: sqlite://./.holdfast/catalog.sqlite
password: { env: HOLDFAST_PASSWORD }
sets:
  docs:
    sources:
      - { type: fs, path: ./data }
    destination: { type: fs, path: ./repo }
    retention: { days: 90, mode: compliance }
    schedule: { every: 7d }
    planner: { strategy: auto, missedRuns: 1, slackDays: 14 }
${set}`;
}

const FAST = { HOLDFAST_SCRYPT_N: "1024" };

async function project(prefix: string, files: Record<string, string> = { "data/a.txt": "a" }, yaml = config()) {
	const dir = await tempDir(prefix);
	for (const [path, content] of Object.entries(files)) {
		await mkdir(join(dir, path, ".."), { recursive: true });
		await writeFile(join(dir, path), content);
	}
	await writeFile(join(dir, "holdfast.yaml"), yaml);
	return dir;
}

/**
 * The repository made, and a first snapshot taken if asked (at `backupAt`, else now), in this
 * process: what the tests read is the commands that come after.
 */
async function setUp(dir: string, options: { backup?: boolean; backupAt?: string } = {}): Promise<void> {
	await inProject(dir, { env: FAST }, ({ engine }) => engine.init());
	if (!options.backup && !options.backupAt) return;
	const now = options.backupAt ? { now: new Date(options.backupAt) } : {};
	const backup = await inProject(dir, { env: FAST, ...now }, ({ engine }) => engine.backup());
	expect(backup.snapshot).toBeDefined();
}

/** The CLI run as another user (`setpriv`, which needs root), in `dir`, with exactly `env`. */
function runAs(uid: number, dir: string, args: string[], env: NodeJS.ProcessEnv) {
	const result = spawnSync(
		"setpriv",
		[`--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", process.execPath, HOLDFAST_BIN, ...args],
		{ cwd: dir, encoding: "utf8", env },
	);
	return { code: result.status, stderr: result.stderr };
}

function run(dir: string, args: string[], env: NodeJS.ProcessEnv = {}) {
	return holdfast(dir, args, { ...FAST, ...env });
}

/** Runs the CLI on a pseudo-terminal (util-linux `script`), as a person at a terminal would see it. */
function onTerminal(dir: string, args: string[]) {
	const command = [process.execPath, HOLDFAST_BIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
	const result = spawnSync("script", ["-qec", command, "/dev/null"], {
		cwd: dir,
		encoding: "utf8",
		env: { ...process.env, ...FAST, HOLDFAST_PASSWORD: "correct horse", COLUMNS: "200" },
	});
	return { code: result.status ?? -1, output: result.stdout };
}

/** Starts the daemon, waits for a line matching `until`, stops it with SIGTERM; its stderr and exit code. */
async function daemonUntil(dir: string, args: string[], until: RegExp): Promise<{ stderr: string; code: number }> {
	const child = startHoldfast(dir, ["daemon", ...args], FAST);
	let stderr = "";
	child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
	const exited = new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? -1)));
	for (let waited = 0; waited < 30_000 && !until.test(stderr); waited += 100) await new Promise((r) => setTimeout(r, 100));
	child.kill("SIGTERM");
	return { code: await exited, stderr };
}

describe("the daemon catches up from the last snapshot, not from its own start", () => {
	it("waits out a restart before the due time, runs an overdue set at once, and status agrees", async () => {
		const dir = await project("holdfast-daemon-due-");
		await setUp(dir, { backupAt: "2027-01-01T00:00:00Z" });

		// Four days in: due on the 8th, seven days after the snapshot (not seven days after this start).
		const early = JSON.parse(run(dir, ["status", "--json", "--now", "2027-01-05T00:00:00Z"]).stdout)[0];
		expect(early).toMatchObject({ nextRun: "2027-01-08T00:00:00.000Z", overdue: false });
		expect(early.nextRunReason).toBe("last snapshot 2027-01-01 00:00 UTC + 7d");
		// "Protected until" means what it means in `snapshots`: the snapshot's time plus its retention.
		const [snapshot] = JSON.parse(run(dir, ["snapshots", "--json"]).stdout);
		expect(early.protectedUntil).toBe(snapshot.protectUntil);
		expect(new Date(early.lockedUntil).getTime()).toBeGreaterThanOrEqual(new Date(early.protectedUntil).getTime());
		const restarted = await daemonUntil(dir, ["--now", "2027-01-05T00:00:00Z"], /next run/);
		expect(restarted.code).toBe(0);
		expect(restarted.stderr).toContain("docs: next run 2027-01-08 00:00 UTC (last snapshot 2027-01-01 00:00 UTC + 7d)");
		expect(restarted.stderr).not.toMatch(/docs: snapshot [0-9a-f]/);
		expect(JSON.parse(run(dir, ["snapshots", "--json"]).stdout)).toHaveLength(1);

		// A day past due: status says so, and a daemon started now runs at once.
		const late = JSON.parse(run(dir, ["status", "--json", "--now", "2027-01-09T00:00:00Z"]).stdout)[0];
		expect(late).toMatchObject({ nextRun: "2027-01-09T00:00:00.000Z", overdue: true });
		expect(late.nextRunReason).toBe("overdue since 2027-01-08 00:00 UTC (last snapshot 2027-01-01 00:00 UTC)");
		expect(run(dir, ["status", "--now", "2027-01-09T00:00:00Z"]).stdout).toMatch(
			/docs .* now .*overdue since 2027-01-08 00:00 UTC/,
		);
		const overdue = await daemonUntil(dir, ["--now", "2027-01-09T00:00:00Z"], /docs: snapshot/);
		expect(overdue.code).toBe(0);
		expect(overdue.stderr).toContain("docs: next run now (overdue since 2027-01-08 00:00 UTC");
		expect(overdue.stderr).toMatch(/docs: snapshot [0-9a-f]{12} at 2027-01-09 00:0\d UTC/);
		expect(overdue.stderr).not.toContain("error");
		const times = JSON.parse(run(dir, ["snapshots", "--json"]).stdout).map((s: { time: string }) => s.time.slice(0, 10));
		expect(times).toEqual(["2027-01-01", "2027-01-09"]);
		// After the catch-up run the next one is seven days after it.
		const after = JSON.parse(run(dir, ["status", "--json", "--now", "2027-01-10T00:00:00Z"]).stdout)[0];
		expect(after.nextRun.slice(0, 10)).toBe("2027-01-16");
	});

	it("says when more runs were missed than the planner's missedRuns allows", async () => {
		const dir = await project("holdfast-daemon-missed-");
		await setUp(dir, { backupAt: "2027-01-01T00:00:00Z" });
		// missedRuns: 1 — the run of the 8th may be missed, not also that of the 15th.
		const within = JSON.parse(run(dir, ["status", "--json", "--now", "2027-01-10T00:00:00Z"]).stdout)[0];
		expect(within.nextRunReason).toBe("overdue since 2027-01-08 00:00 UTC (last snapshot 2027-01-01 00:00 UTC)");
		const beyond = JSON.parse(run(dir, ["status", "--json", "--now", "2027-01-30T00:00:00Z"]).stdout)[0];
		expect(beyond.nextRunReason).toContain("4 scheduled runs missed, more than the planner's missedRuns (1)");
	});

	it("a SIGTERM during a run is a clean stop, not an error", async () => {
		// A source that is still being read when the signal comes: a dump that takes its time.
		const slowSource = fileURLToPath(new URL("../examples/plugin-command-source", import.meta.url));
		const dir = await project(
			"holdfast-daemon-stop-",
			{ "data/a": "a" },
			config(`  - "${slowSource}"\n`).replace(
				"      - { type: fs, path: ./data }",
				'      - { type: fs, path: ./data }\n      - { type: command, command: [sleep, "60"], name: dump.sql }',
			),
		);
		const init = run(dir, ["init"]);
		expect(init.code).toBe(0);
		// The doctor's table is on stdout; what needs a look is on stderr too, where a script still shows it.
		expect(init.stderr).toMatch(/^warning: docs: locks: emulated by holdfast: /);
		const stopped = await daemonUntil(dir, [], /next run now/);
		expect(stopped.code, stopped.stderr).toBe(0);
		expect(stopped.stderr).toContain("docs: run stopped by SIGTERM; nothing half-written is listed");
		expect(stopped.stderr).not.toMatch(/error|aborted/i);
		expect(JSON.parse(run(dir, ["snapshots", "--json"]).stdout)).toEqual([]);
		expect(run(dir, ["snapshots"]).stdout).toBe("no snapshots yet: `holdfast backup` takes the first\n");
	});

	it("`snapshots <set>` of a set without snapshots says so, though the config has other sets", async () => {
		const second = `  photos:
    sources:
      - { type: fs, path: ./data }
    destination: { type: fs, path: ./photos-repo }
    retention: { days: 30 }
`;
		const dir = await project("holdfast-two-sets-", { "data/a": "a" }, config("", second));
		expect(run(dir, ["init", "photos"]).code).toBe(0);
		const listed = run(dir, ["snapshots", "photos"]);
		expect(listed.stderr).toBe("");
		expect(listed.stdout).toBe(
			'no snapshots of set "photos"; its repository has none yet: `holdfast backup photos` takes the first\n',
		);
		// docs has no repository yet: status says so, and still shows photos.
		const status = run(dir, ["status"]);
		expect(status.code).toBe(1);
		expect(status.stdout).toMatch(/^photos /m);
		expect(status.stderr).toMatch(/^holdfast: docs: no repository at fs:.*\(run "holdfast init" first\)$/m);
	});
});

describe("config check says what this machine lacks to run the config", () => {
	it("warns of a password it cannot read and of a key whose variables are unset, and says ok once they are there", async () => {
		const yaml = config()
			.replace("password: { env: HOLDFAST_PASSWORD }", "password: { file: ./password.txt }")
			.replace('  - "@holdfast/plugin-groom"\n', '  - "@holdfast/plugin-groom"\n  - "@holdfast/plugin-b2"\n')
			.replace(
				"destination: { type: fs, path: ./repo }",
				'destination: { type: s3, endpoint: "http://127.0.0.1:1", bucket: acme, keyIdEnv: OFFICE_KEY_ID, secretEnv: OFFICE_SECRET, credentials: { groom: { keyIdEnv: GROOM_KEY_ID, secretEnv: GROOM_SECRET } } }',
			);
		const dir = await project("holdfast-check-env-", { "data/a": "a" }, yaml);
		const lacking = run(dir, ["config", "check"], { HOLDFAST_PASSWORD: "" });
		expect(lacking.code).toBe(0);
		expect(lacking.stdout.trim()).toBe(`${join(dir, "holdfast.yaml")}: ok, 3 warnings`);
		expect(lacking.stderr).toMatch(/^holdfast: warning: .*holdfast\.yaml: password: cannot read .*password\.txt/m);
		expect(lacking.stderr).toMatch(
			/^holdfast: warning: set docs: destination: no credentials: set OFFICE_KEY_ID and OFFICE_SECRET/m,
		);
		expect(lacking.stderr).toMatch(
			/^holdfast: warning: set docs: destination: no groom key: set GROOM_KEY_ID and GROOM_SECRET .*; needed only where groom runs$/m,
		);
		await writeFile(join(dir, "password.txt"), "secret\n");
		const keys = { OFFICE_KEY_ID: "id", OFFICE_SECRET: "secret", GROOM_KEY_ID: "id", GROOM_SECRET: "secret" };
		const ready = run(dir, ["config", "check"], { HOLDFAST_PASSWORD: "", ...keys });
		expect(ready.stderr).toBe("");
		expect(ready.stdout.trim()).toBe(`${join(dir, "holdfast.yaml")}: ok`);
	});
});

describe("a schedule that cannot keep the promise is warned about before it bites", () => {
	it("config check and plan warn when runs are further apart than the retention, or the slack passes the cap", async () => {
		const dir = await project(
			"holdfast-schedule-",
			{ "data/a": "a" },
			config()
				.replace("retention: { days: 90, mode: compliance }", "retention: { days: 30, mode: compliance }")
				.replace("schedule: { every: 7d }", 'schedule: { cron: "0 3 1 * *" }')
				.replace("destination: { type: fs, path: ./repo }", "destination: { type: fs, path: ./repo, maxRetentionDays: 35 }"),
		);
		const check = run(dir, ["config", "check"]);
		expect(check.code).toBe(0);
		expect(check.stderr).toMatch(/warning: set docs: runs up to 31 d apart.* exceed the 30-day retention/);
		expect(check.stderr).toMatch(
			/warning: set docs: retention 30 days plus 14 d of slack exceeds the destination's cap of 35 days/,
		);
		await setUp(dir);
		const plan = run(dir, ["plan"]);
		expect(plan.code).toBe(0);
		expect(plan.stdout).toMatch(/^warning: runs up to 31 d apart/m);
		// A weekly schedule under the same retention is fine.
		await writeFile(
			join(dir, "holdfast.yaml"),
			config().replace("retention: { days: 90, mode: compliance }", "retention: { days: 30, mode: compliance }"),
		);
		expect(run(dir, ["config", "check"]).stderr).not.toMatch(/runs up to/);
	});

	it("config check warns when no planner is loaded: nothing would renew a lock", async () => {
		const dir = await project(
			"holdfast-no-planner-",
			{ "data/a": "a" },
			config()
				.replace('  - "@holdfast/plugin-retention-planner"\n', "")
				.replace(/ {4}planner: .*\n/, ""),
		);
		const check = run(dir, ["config", "check"]);
		expect(check.code).toBe(0);
		expect(check.stderr).toMatch(/^holdfast: warning: no planner plugin is loaded \(@holdfast\/plugin-retention-planner\)/m);
		expect(check.stdout.trim()).toBe(`${join(dir, "holdfast.yaml")}: ok, 1 warning`);
	});

	it("an interval under a minute is refused: each run would write another locked snapshot at once", async () => {
		const dir = await project("holdfast-no-interval-", { "data/a": "a" }, config().replace("every: 7d", "every: 0d"));
		const check = run(dir, ["config", "check"]);
		expect(check.code).toBe(2);
		expect(check.stderr.trim()).toBe(
			`holdfast: ${join(dir, "holdfast.yaml")}:14: sets.docs.schedule.every: "0d" is shorter than a minute, the shortest interval between runs`,
		);
		await writeFile(join(dir, "holdfast.yaml"), config().replace("every: 7d", "every: 1m"));
		expect(run(dir, ["config", "check"]).code).toBe(0);
	});

	it("a cron pattern that cannot run, or a schedule of neither kind, is one config line with file and line", async () => {
		const file = (dir: string) => join(dir, "holdfast.yaml");
		const cases: [string, string][] = [
			['cron: "61 2 * * *"', 'sets.docs.schedule.cron: "61 2 * * *": invalid value for minute: 61'],
			['cron: "0 0 30 2 *"', 'sets.docs.schedule.cron: "0 0 30 2 *": has no run after '],
			["every: 7x", 'sets.docs.schedule.every: must match pattern "^[0-9]+(\\.[0-9]+)?\\s*(s|m|h|d|w)$"'],
			["evry: 7d", "sets.docs.schedule: must have one of every, cron\n"],
			["every: 99999999d", 'sets.docs.schedule.every: "99999999d" is longer than ten years, the longest interval between runs'],
		];
		for (const [schedule, line] of cases) {
			const dir = await project("holdfast-cron-", { "data/a": "a" }, config().replace("every: 7d", schedule));
			for (const command of [["config", "check"], ["status"]]) {
				const result = run(dir, command);
				expect(result.code, `${schedule}: ${command.join(" ")}`).toBe(2);
				expect(result.stderr, schedule).toContain(`holdfast: ${file(dir)}:14: ${line}`);
				// One line for the mistake (and one for a misspelt key): no branch of the schema that was not meant.
				expect(result.stderr.trim().split("\n"), schedule).toHaveLength(schedule.startsWith("evry") ? 2 : 1);
			}
		}
		// A set's name may hold a dot: the line is still the key's.
		const dotted = await project(
			"holdfast-cron-dot-",
			{ "data/a": "a" },
			config().replace("  docs:", "  docs.web:").replace("every: 7d", 'cron: "61 2 * * *"'),
		);
		expect(run(dotted, ["config", "check"]).stderr).toBe(
			`holdfast: ${file(dotted)}:14: sets.docs.web.schedule.cron: "61 2 * * *": invalid value for minute: 61\n`,
		);
	});
});

describe("a source root that is not there fails the run", () => {
	it("exit 1, one line naming set and path, no snapshot; config check warns with the line", async () => {
		const dir = await project(
			"holdfast-missing-root-",
			{ "data/a": "a" },
			config().replace("path: ./data", "path: [./data, ./gone]"),
		);
		await setUp(dir);
		const backup = run(dir, ["backup"]);
		expect(backup.code).toBe(1);
		expect(backup.stderr.trim()).toBe(`holdfast: docs: source root ${join(dir, "gone")} does not exist`);
		expect(JSON.parse(run(dir, ["snapshots", "--json"]).stdout)).toEqual([]);
		const check = run(dir, ["config", "check"]);
		expect(check.code).toBe(0);
		expect(check.stdout).toContain("holdfast.yaml: ok, 1 warning");
		expect(check.stderr.trim()).toBe(
			`holdfast: warning: ${join(dir, "holdfast.yaml")}:11: set docs: source root ${join(dir, "gone")} does not exist`,
		);
	});
});

describe("a backup that found no file says so", () => {
	it("an exclude that matches every file: the snapshot is saved, and stderr says it holds empty folders only", async () => {
		const dir = await project(
			"holdfast-no-files-",
			{ "data/a.tmp": "a", "data/sub/b.tmp": "b" },
			config().replace("path: ./data }", 'path: ./data, exclude: ["*.tmp"] }'),
		);
		await setUp(dir);
		const empty = run(dir, ["backup"]);
		expect(empty.code).toBe(0);
		expect(empty.stdout).toContain("files: 0 new, 0 changed, 0 unchanged");
		expect(empty.stderr.trim()).toBe(
			"warning: docs: the sources hold no files, so this backup keeps empty folders only; check the set's paths and excludes",
		);
		// --quiet drops the report, never the warning: that is what cron should mail.
		const quiet = run(dir, ["backup", "--quiet"]);
		expect(quiet.code).toBe(0);
		expect(quiet.stdout).toBe("");
		expect(quiet.stderr).toBe(empty.stderr);
		await writeFile(join(dir, "data/sub/c.txt"), "c");
		const found = run(dir, ["backup"]);
		expect(found.stdout).toContain("files: 1 new");
		expect(found.stderr).toBe("");
		const silent = run(dir, ["backup", "--quiet"]);
		expect([silent.code, silent.stdout, silent.stderr]).toEqual([0, "", ""]);
	});
});

describe("restore into its own earlier restore", () => {
	const asRoot = process.getuid?.() === 0 && spawnSync("setpriv", ["--version"]).status === 0;
	it.skipIf(!asRoot)("rewrites files under folders the snapshot has read-only, as their owner (not root)", async () => {
		// A user's own restore: root may write anywhere, so the case is run as nobody, in a folder
		// of the machine's /tmp (the tests' own temp folder is root's alone).
		const dir = await mkdtemp("/tmp/holdfast-readonly-");
		onTestFinished(() => rm(dir, { recursive: true, force: true }));
		await chmod(dir, 0o777);
		await mkdir(join(dir, "data/ro/inner"), { recursive: true });
		await writeFile(join(dir, "data/ro/f"), "a");
		await writeFile(join(dir, "data/ro/inner/g"), "b");
		await chmod(join(dir, "data/ro/inner"), 0o500);
		await chmod(join(dir, "data/ro"), 0o555);
		await writeFile(join(dir, "holdfast.yaml"), config());
		spawnSync("chown", ["-R", "65534:65534", dir]);
		const asNobody = (args: string[]) =>
			runAs(65534, dir, args, { ...process.env, ...FAST, HOLDFAST_PASSWORD: "correct horse", HOME: dir, TMPDIR: dir });
		const init = asNobody(["init"]);
		expect(init.code, init.stderr).toBe(0);
		const first = asNobody(["backup"]);
		expect(first.code, first.stderr).toBe(0);
		const restored = asNobody(["restore", "latest", "--target", "out"]);
		expect(restored.code, restored.stderr).toBe(0);
		await chmod(join(dir, "data/ro"), 0o755);
		await writeFile(join(dir, "data/ro/f"), "changed");
		await chmod(join(dir, "data/ro"), 0o555);
		const second = asNobody(["backup"]);
		expect(second.code, second.stderr).toBe(0);
		const again = asNobody(["restore", "latest", "--target", "out", "--overwrite"]);
		expect(again.stderr).toBe("");
		expect(again.code).toBe(0);
		expect(readFileSync(join(dir, "out/data/ro/f"), "utf8")).toBe("changed");
		expect(statSync(join(dir, "out/data/ro")).mode & 0o777).toBe(0o555);
		expect(statSync(join(dir, "out/data/ro/inner")).mode & 0o777).toBe(0o500);
	});
});

describe("the password and the unlock hints, wherever the command runs", () => {
	it("a password given on stdin works on every run, also once a hint makes the launcher guess ahead", async () => {
		const dir = await project(
			"holdfast-stdin-password-",
			{ "data/a.txt": "a" },
			config().replace(/^catalog: .*$/m, 'catalog: "memory://"'),
		);
		// Through a pipe, as a shell gives it (`pass show x | holdfast …`).
		const withStdin = (args: string[]) =>
			spawnSync(
				"sh",
				["-c", 'printf "piped secret\\n" | "$0" "$@" --password-file /dev/stdin', process.execPath, HOLDFAST_BIN, ...args],
				{
					cwd: dir,
					encoding: "utf8",
					env: { ...process.env, ...FAST, HOLDFAST_PASSWORD: "" },
				},
			);
		const init = withStdin(["init"]);
		expect(init.status, init.stderr).toBe(0);
		// The first records the hint; each later one reads the pipe once, in the command.
		for (let run = 0; run < 3; run++) {
			const listed = withStdin(["snapshots"]);
			expect(listed.stderr).toBe("");
			expect(listed.status).toBe(0);
		}
	});

	const asRoot = process.getuid?.() === 0 && spawnSync("setpriv", ["--version"]).status === 0;
	it.skipIf(!asRoot)(
		"with no HOME and a uid the machine has no name for (a container's), hints are simply not kept",
		async () => {
			const dir = await mkdtemp("/tmp/holdfast-no-home-");
			onTestFinished(() => rm(dir, { recursive: true, force: true }));
			await mkdir(join(dir, "data"));
			await writeFile(join(dir, "data/a.txt"), "a");
			await writeFile(join(dir, "holdfast.yaml"), config());
			spawnSync("chown", ["-R", "54321:54321", dir]);
			const asStranger = (args: string[]) =>
				runAs(54321, dir, args, { PATH: process.env.PATH, ...FAST, HOLDFAST_PASSWORD: "pw", TMPDIR: dir });
			for (const args of [["init"], ["backup"], ["snapshots"], ["snapshots"]]) {
				const result = asStranger(args);
				// init repeats the doctor's warning about emulated locks; nothing else is said.
				expect(result.stderr.replace(/^warning: docs: locks: emulated .*\n/m, ""), args.join(" ")).toBe("");
				expect(result.code, args.join(" ")).toBe(0);
			}
		},
	);
});

describe("ls says what each entry is", () => {
	it("a named pipe is 'p' in the short listing as in the long one, and restore counts it", async () => {
		const dir = await project("holdfast-ls-fifo-", { "data/a.txt": "a" });
		spawnSync("mkfifo", [join(dir, "data/pipe")]);
		await setUp(dir, { backup: true });
		expect(run(dir, ["ls", "latest"]).stdout).toMatch(/^p +0 data\/pipe$/m);
		expect(run(dir, ["ls", "-l", "latest"]).stdout).toMatch(/^prw-r--r-- +0 .* data\/pipe$/m);
		expect(run(dir, ["restore", "latest", "--target", "out"]).stdout).toMatch(
			/: 1 file, 1 folder, 0 links, 1 named pipe; wrote /,
		);
		expect(statSync(join(dir, "out/data/pipe")).isFIFO()).toBe(true);
	});
});

describe("unreadable is not absent", () => {
	it("snapshots and status fail, naming what they could not read, when snapshot objects do not verify", async () => {
		const dir = await project("holdfast-unreadable-", { "data/a.txt": "a" });
		await setUp(dir, { backup: true });
		const folder = join(dir, "repo/objects/snapshots");
		for (const entry of await readdir(folder)) {
			for (const version of await readdir(join(folder, entry))) {
				if (version.endsWith(".data")) await writeFile(join(folder, entry, version), "garbage");
			}
		}
		await rm(join(dir, ".holdfast"), { recursive: true, force: true });
		const listed = run(dir, ["snapshots"]);
		expect(listed.code).toBe(1);
		expect(listed.stdout).not.toContain("no snapshots yet");
		expect(listed.stderr).toMatch(
			/^holdfast: 1 snapshot cannot be read \([0-9a-f]{12}\): the listing leaves them out; "holdfast check" says why$/m,
		);
		// Said once, the key once.
		expect(listed.stderr.match(/no version of it verifies/g)).toHaveLength(1);
		expect(listed.stderr).not.toMatch(/(snapshots\/[0-9a-f]{64}): \1/);
		const status = run(dir, ["status", "--json"]);
		expect(status.code).toBe(1);
		expect(status.stderr).toMatch(/1 snapshot cannot be read/);
	});
});

describe("output to a closed pipe", () => {
	it("`ls latest | head -1` prints one line and no stack trace", async () => {
		const files: Record<string, string> = {};
		for (let i = 0; i < 3000; i++) files[`data/f${i}`] = "x";
		const dir = await project("holdfast-pipe-", files);
		await setUp(dir, { backup: true });
		const piped = spawnSync(
			"bash",
			["-c", `'${process.execPath}' '${HOLDFAST_BIN}' ls latest 2>err.txt | head -1; echo "exit \${PIPESTATUS[0]}"`],
			{ cwd: dir, encoding: "utf8", env: { ...process.env, ...FAST, HOLDFAST_PASSWORD: "correct horse" } },
		);
		expect(piped.stdout.trim().split("\n")).toEqual([expect.stringMatching(/ data$/), "exit 0"]);
		expect(readFileSync(join(dir, "err.txt"), "utf8")).toBe("");
	});

	it("a backup whose output cannot be written says so in one line, saves its snapshot and exits 1", async () => {
		const dir = await project("holdfast-full-", { "data/a.txt": "a" });
		await setUp(dir);
		const full = spawnSync("bash", ["-c", `'${process.execPath}' '${HOLDFAST_BIN}' backup >/dev/full`], {
			cwd: dir,
			encoding: "utf8",
			env: { ...process.env, ...FAST, HOLDFAST_PASSWORD: "correct horse" },
		});
		expect(full.stderr).toBe("holdfast: cannot write the output (ENOSPC); the command goes on without it\n");
		expect(full.status).toBe(1);
		expect(run(dir, ["snapshots"]).stdout).toMatch(/^[0-9a-f]{12} /m);
	});
});

describe("when nothing matches, say so", () => {
	let dir: string;
	beforeAll(async () => {
		dir = await project("holdfast-match-", { "data/doc/bash/x.txt": "x", "data/doc/zsh/y.txt": "y" });
		await setUp(dir, { backup: true });
	});

	it("ls of a path without its root segment fails and shows the top level", () => {
		const ls = run(dir, ["ls", "latest", "doc/bash"]);
		expect(ls.code).toBe(1);
		expect(ls.stderr.trim()).toMatch(/^holdfast: nothing at "doc\/bash" in snapshot [0-9a-f]{12}; its top level has data$/);
	});

	it("ls and restore take the absolute source path a user types", async () => {
		const ls = run(dir, ["ls", "latest", join(dir, "data/doc/bash")]);
		expect(ls.code).toBe(0);
		expect(
			ls.stdout
				.trim()
				.split("\n")
				.map((l) => l.split(/\s+/).pop()),
		).toEqual(["data/doc/bash", "data/doc/bash/x.txt"]);
		const restore = run(dir, ["restore", "latest", "--target", "abs", "--include", `${join(dir, "data/doc/bash")}/**`]);
		expect(restore.code, restore.stderr).toBe(0);
		expect(restore.stdout).toContain(": 1 file,");
		expect(await readdir(join(dir, "abs/data/doc"))).toEqual(["bash"]);
	});

	it("restore --include that matches nothing fails before touching the target", async () => {
		const restore = run(dir, ["restore", "latest", "--target", "none", "--include", "doc/bash/**"]);
		expect(restore.code).toBe(1);
		expect(restore.stderr.trim()).toMatch(
			/^holdfast: --include doc\/bash\/\*\*: matches nothing in snapshot [0-9a-f]{12}; its top level has data$/,
		);
		await expect(readdir(join(dir, "none"))).rejects.toThrow(/ENOENT/);
		// One pattern of two that matches nothing is the same typo, not a smaller restore.
		const second = run(dir, ["restore", "latest", "--target", "none", "--include", "data/doc/**", "--include", "doc/bash/**"]);
		expect(second.code).toBe(1);
		expect(second.stderr.trim()).toMatch(
			/^holdfast: --include doc\/bash\/\*\*: matches nothing in snapshot [0-9a-f]{12}, though other patterns do; nothing was restored$/,
		);
		await expect(readdir(join(dir, "none"))).rejects.toThrow(/ENOENT/);
	});
});

describe("progress is honest, and only on a terminal", () => {
	it("the first backup counts without a percentage; restore shows progress; --json and pipes get none", async () => {
		const files: Record<string, string> = {};
		for (let i = 0; i < 50; i++) files[`data/f${i}`] = `${i}`.repeat(5000);
		const dir = await project("holdfast-progress-", files);
		await setUp(dir);
		const first = onTerminal(dir, ["backup"]);
		expect(first.code, first.output).toBe(0);
		const frames = first.output.split("\r").filter((f) => f.startsWith("backup  "));
		expect(frames.length).toBeGreaterThan(0);
		// No total yet: counts only, no percentage and no ETA, and never a non-number.
		for (const frame of frames) expect(frame).not.toMatch(/%|ETA|NaN|Infinity|undefined/);

		const restore = onTerminal(dir, ["restore", "latest", "--target", "out"]);
		expect(restore.code, restore.output).toBe(0);
		const restoreFrames = restore.output.split("\r").filter((f) => f.startsWith("restore  "));
		expect(restoreFrames.length).toBeGreaterThan(0);
		// The total is known from the snapshot: a bar and "of" the total, still no ETA this early.
		expect(restoreFrames[0]).toMatch(/^restore {2}\[[#-]{20}\] \d+ % {2}\d+\/50 files? {2}.* of 439\.5 KiB/);
		for (const frame of restoreFrames) expect(frame).not.toMatch(/NaN|Infinity|ETA/);

		// A terminal turns "\n" into "\r\n"; a progress frame is the one that clears its line.
		expect(onTerminal(dir, ["backup", "--json"]).output).not.toContain("\x1b[K");
		expect(onTerminal(dir, ["restore", "latest", "--target", "out2", "--quiet"]).output).not.toContain("\x1b[K");
		expect(run(dir, ["restore", "latest", "--target", "out3"]).stderr).toBe("");
		const check = onTerminal(dir, ["check", "--read-data"]);
		expect(check.output).toMatch(/check: packs {2}\[[#-]{20}\] \d+ %/);
	});
});

describe("errors name the set, the destination and the real cause", () => {
	it("a SQLite module built for another Node says so, with Node's first reason, not 'did not self-register'", async () => {
		const dir = await project("holdfast-abi-");
		await setUp(dir);
		// Loads as better-sqlite3 does when it was built for another Node: the first try says why, later ones only "did not self-register".
		const breaker = join(dir, "break-sqlite.cjs");
		await writeFile(
			breaker,
			`const Module = require("node:module");
const load = Module._load;
let tries = 0;
Module._load = function (request, ...rest) {
	if (request !== "better-sqlite3") return load.call(this, request, ...rest);
	throw new Error(tries++ === 0
		? "The module '/x/better_sqlite3.node'\\nwas compiled against a different Node.js version using\\nNODE_MODULE_VERSION 115. This version of Node.js requires\\nNODE_MODULE_VERSION 127. Please try re-compiling or re-installing\\nthe module."
		: "Module did not self-register: '/x/better_sqlite3.node'.");
};
`,
		);
		for (const args of [["snapshots"], ["backup"]]) {
			const result = spawnSync(process.execPath, ["--require", breaker, HOLDFAST_BIN, ...args], {
				cwd: dir,
				encoding: "utf8",
				env: { ...process.env, ...FAST, HOLDFAST_PASSWORD: "correct horse" },
			});
			expect(result.status, args.join(" ")).toBe(1);
			expect(result.stderr.trim().split("\n"), args.join(" ")).toEqual([
				expect.stringMatching(
					/^holdfast: (docs: )?the catalog's SQLite module \(better-sqlite3\) does not load on Node v[\d.]+ \(The module '\/x\/better_sqlite3\.node' was compiled against a different Node\.js version using NODE_MODULE_VERSION 115\. This version of Node\.js requires NODE_MODULE_VERSION 127\.\): reinstall holdfast on this machine under this Node \(npm ci builds it\)$/,
				),
			]);
		}
	});

	const canMount = spawnSync("sh", ["-c", "d=$(mktemp -d) && mount -t tmpfs -o ro,size=1m tmpfs $d && umount $d"]).status === 0;

	it.skipIf(!canMount)("init and backup on a read-only file system say EROFS, not ENOENT", async () => {
		const dir = await project("holdfast-erofs-");
		const mount = join(dir, "mnt");
		await mkdir(mount);
		const yaml = config().replace("path: ./repo", `path: ${mount}/repo`);
		await writeFile(join(dir, "holdfast.yaml"), yaml);
		try {
			expect(spawnSync("mount", ["-t", "tmpfs", "-o", "ro,size=4m", "tmpfs", mount]).status).toBe(0);
			const init = run(dir, ["init"]);
			expect(init.code).toBe(1);
			expect(init.stderr.trim()).toBe(
				`holdfast: docs: fs:${mount}/repo: cannot create the repository folder: read-only file system (EROFS)`,
			);
			expect(spawnSync("mount", ["-o", "remount,rw", mount]).status).toBe(0);
			expect(run(dir, ["init"]).code).toBe(0);
			expect(spawnSync("mount", ["-o", "remount,ro", mount]).status).toBe(0);
			const backup = run(dir, ["backup"]);
			expect(backup.code).toBe(1);
			expect(backup.stderr.trim()).toMatch(
				new RegExp(`^holdfast: docs: fs:${mount}/repo: cannot write [a-z]+/\\S+: read-only file system \\(EROFS\\)$`),
			);
		} finally {
			spawnSync("umount", [mount]);
		}
	});
});

describe("bad input: one line, exit 2", () => {
	it("rejects impossible dates, empty values, non-numbers and a misspelt plugin (with its line)", async () => {
		const dir = await project("holdfast-input-");
		const cases: [string[], string][] = [
			[["status", "--now", "2027-02-30"], 'holdfast: --now: "2027-02-30" has no such day: that month has 28 days'],
			[["status", "--now", ""], 'holdfast: --now: "" is not an ISO time (like 2027-03-01 or 2027-03-01T02:00:00Z)'],
			[["plan", "--at", "tomorrow"], 'holdfast: --at: "tomorrow" is not an ISO time (like 2027-03-01 or 2027-03-01T02:00:00Z)'],
			[
				["plan", "--forecast", "1y", "--change-rate", "abc"],
				'holdfast: --change-rate: "abc" is not a number from 0 to 100 (percent a week)',
			],
			[
				["check", "--read-data-subset", "lots"],
				'holdfast: --read-data-subset: "lots" is not a number from 0 to 100 (percent of the packs)',
			],
			[
				["check", "--read-data-subset", "0x10"],
				'holdfast: --read-data-subset: "0x10" is not a number from 0 to 100 (percent of the packs)',
			],
			[["restore", "latest", "--target", ""], "holdfast: --target: needs a value"],
			[["plan", "--forecast", "0d"], 'holdfast: --forecast: "0d" is not a period to forecast (like 365d)'],
			[
				["plan", "--change-rate", "5"],
				"holdfast: --change-rate works with --forecast only (like --forecast 365d --change-rate …)",
			],
			[
				["plan", "--forecast", "100000d"],
				"holdfast: a forecast of 100000 days holds more than 10,000 runs of this schedule, the most one replays: forecast a shorter period (the schedule reached that count after 70000 days)",
			],
		];
		await setUp(dir);
		for (const [args, line] of cases) {
			const result = run(dir, args);
			expect(result.code, args.join(" ")).toBe(2);
			expect(result.stderr.trim(), args.join(" ")).toBe(line);
		}
		// A command that writes runs on the real clock: a moved one would forget or lock by the wrong date.
		for (const command of [["backup"], ["groom"]]) {
			const moved = run(dir, [...command, "--now", "2031-01-01"], { HOLDFAST_SIMULATED_CLOCK: "" });
			expect(moved.code).toBe(2);
			expect(moved.stderr).toBe(
				`holdfast: --now: ${command[0]} writes to the repository, so it runs on the real clock; --now is for what-if runs: add --dry-run, or set HOLDFAST_SIMULATED_CLOCK=1 to write as if it were then (tests, drills)\n`,
			);
		}
		expect(run(dir, ["backup", "--dry-run", "--now", "2031-01-01"], { HOLDFAST_SIMULATED_CLOCK: "" }).code).toBe(0);
		await writeFile(join(dir, "holdfast.yaml"), config().replace("plugin-groom", "plugin-grom"));
		const misspelt = run(dir, ["snapshots"]);
		expect(misspelt.code).toBe(2);
		expect(misspelt.stderr.trim()).toBe(
			`holdfast: ${join(dir, "holdfast.yaml")}:5: plugin @holdfast/plugin-grom: package not found (npm install @holdfast/plugin-grom)`,
		);
	});
});

describe("words and numbers", () => {
	it("--version, --help and plugins work without a config; init checks the password of an existing repository", async () => {
		const empty = await tempDir("holdfast-noconfig-");
		const pkg = JSON.parse(readFileSync(new URL("../packages/cli/package.json", import.meta.url), "utf8"));
		expect(run(empty, ["--version"]).stdout.trim()).toBe(pkg.version);
		expect(run(empty, ["--help"]).code).toBe(0);
		const plugins = run(empty, ["plugins", "--json"]);
		expect(plugins.code, plugins.stderr).toBe(0);
		expect(JSON.parse(plugins.stdout).map((p: { name: string }) => p.name)).toContain("@holdfast/plugin-fs-destination");

		const dir = await project("holdfast-words-");
		expect(run(dir, ["init"]).code).toBe(0);
		const wrong = run(dir, ["init"], { HOLDFAST_PASSWORD: "not it" });
		expect(wrong.code).toBe(1);
		expect(wrong.stderr.trim()).toMatch(/^holdfast: wrong password for the repository at fs:.*repo$/);
		expect(run(dir, ["init"]).stdout).toContain("repository already exists; nothing changed");
	});

	it("ls -l shows mode, size, mtime and link target; check says how much it read; the forecast names its prices", async () => {
		const dir = await project("holdfast-ls-l-", { "data/a.txt": "hello" });
		await symlink("a.txt", join(dir, "data/link"));
		await setUp(dir);
		const backup = run(dir, ["backup"]);
		expect(backup.stdout).not.toMatch(/\b1 objects\b|\b1 files\b|\b1 locks\b/);
		const restore = run(dir, ["restore", "latest", "--target", "out"]);
		expect(restore.stdout).toMatch(/: 1 file, 1 folder, 1 link; wrote /);
		const ls = run(dir, ["ls", "-l", "latest"]);
		expect(ls.stdout).toMatch(/^-rw-r--r-- +5 \d{4}-\d\d-\d\d \d\d:\d\d:\d\d data\/a\.txt$/m);
		expect(ls.stdout).toMatch(/^lrwxrwxrwx +\d+ .* data\/link -> a\.txt$/m);
		const check = run(dir, ["check", "--read-data-subset", "100"]);
		expect(check.stdout).toMatch(
			/^data: read and verified (\d+) of \1 packs? \(100 % asked for\) out of [\d.]+ (B|KiB) stored$/m,
		);
		// The smallest share still reads a pack: "verified 0 of 1" with no errors would say nothing.
		const subset = run(dir, ["check", "--read-data-subset", "0.1%"]);
		expect(subset.stdout).toMatch(/^data: read and verified 1 of \d+ packs? \(0\.1 % asked for\)/m);
		const forecast = run(dir, ["plan", "--forecast", "30d"]);
		expect(forecast.stdout).toContain(
			`prices: Backblaze B2 (list prices), from the default table (the destination, fs:${join(dir, "repo")}, has no price of its own`,
		);
	});

	it("the S3 SDK's note about Node versions is not shown to users", async () => {
		const dir = await project("holdfast-sdk-", { "data/a": "a" }, S3_CONFIG);
		const result = run(dir, ["snapshots"], { K: "k", S: "s", AWS_MAX_ATTEMPTS: "1", HOLDFAST_RETRY_BUDGET: "1s" });
		expect(result.code).toBe(1);
		expect(result.stderr).not.toMatch(/NodeVersionSupportWarning|AWS SDK for JavaScript/);
		expect(result.stderr.trim().split("\n")).toHaveLength(1);
	});
});

const S3_CONFIG = config()
	.replace('"@holdfast/plugin-fs-destination"', '"@holdfast/plugin-b2"')
	.replace(
		"destination: { type: fs, path: ./repo }",
		'destination: { type: s3, endpoint: "http://127.0.0.1:9", bucket: bucket, keyIdEnv: K, secretEnv: S }',
	);

/** A module of the S3 SDK: from node_modules, or the plugin's bundle of it. */
const SDK_LOAD = /@aws-sdk|@smithy|plugin-b2\/dist\/bundle\/sdk-modules\.js/;

function importsOf(dir: string | undefined, args: string[]): string[] {
	const hooks = new URL("./support/record-imports.mjs", import.meta.url);
	const result = spawnSync(process.execPath, ["--import", hooks.href, HOLDFAST_BIN, ...args], {
		encoding: "utf8",
		...(dir ? { cwd: dir } : {}),
		env: { ...process.env, ...FAST, HOLDFAST_PASSWORD: "correct horse" },
	});
	expect(result.status, `${args.join(" ")}: ${result.stderr.slice(-500)}`).toBeLessThanOrEqual(2);
	return result.stderr.split("\n").filter((l) => l.startsWith("import ") || l.startsWith("require "));
}

describe("startup loads only what the command needs", () => {
	it("--help and a usage error load neither the engine nor any SDK", () => {
		for (const args of [["--help"], ["backup", "--frobnicate"]]) {
			const loaded = importsOf(undefined, args);
			expect(loaded.length, args.join(" ")).toBeGreaterThan(0);
			expect(loaded.filter((l) => /node_modules|@aws-sdk|croner/.test(l))).toEqual([]);
			// The core's unit formatting and the runner of the CLI's cached libraries (their entries
			// and the small pieces they share) are all of it that may load: never the core's bundle
			// with the engine, inversify, ajv and yaml.
			const core = loaded.filter((l) => /packages\/core\//.test(l)).map((l) => fileURLToPath(l.replace(/^import /, "")));
			expect(core.filter((file) => !/\/dist\/bundle\/(units|code-cache|chunk-\w+)\.js$/.test(file))).toEqual([]);
			const coreBytes = core.reduce((sum, file) => sum + statSync(file).size, 0);
			expect(coreBytes, core.join(", ")).toBeLessThan(16 * 1024);
		}
	});

	it("the S3 SDK is loaded only when a bucket is used, not to check a config or list plugins", async () => {
		const dir = await project("holdfast-lazy-sdk-", { "data/a": "a" }, S3_CONFIG);
		for (const args of [["config", "check"], ["plugins"]]) {
			const loaded = importsOf(dir, args);
			expect(
				loaded.some((l) => l.includes("plugin-b2")),
				args.join(" "),
			).toBe(true);
			expect(
				loaded.filter((l) => SDK_LOAD.test(l)),
				args.join(" "),
			).toEqual([]);
		}
	});

	it("a command that talks to S3 loads the SDK from the plugin's bundle, none of it from node_modules", async () => {
		const dir = await project("holdfast-bundled-sdk-", { "data/a": "a" }, S3_CONFIG);
		const hooks = new URL("./support/record-imports.mjs", import.meta.url);
		const result = spawnSync(process.execPath, ["--import", hooks.href, HOLDFAST_BIN, "snapshots"], {
			cwd: dir,
			encoding: "utf8",
			env: {
				...process.env,
				...FAST,
				HOLDFAST_PASSWORD: "correct horse",
				K: "k",
				S: "s",
				AWS_MAX_ATTEMPTS: "1",
				HOLDFAST_RETRY_BUDGET: "1s",
			},
		});
		// Nothing listens on the endpoint: the SDK loaded, sent, and the command failed in one line.
		expect(result.status).toBe(1);
		const loaded = result.stderr.split("\n").filter((l) => l.startsWith("import ") || l.startsWith("require "));
		expect(loaded.filter((l) => l.endsWith("/packages/plugin-b2/dist/bundle/sdk-modules.js"))).toHaveLength(1);
		expect(loaded.filter((l) => /node_modules\/(@aws-sdk|@smithy|@aws-crypto)\//.test(l))).toEqual([]);
	});

	it("a set scheduled with `every` never loads the cron parser; snapshots loads no SDK", async () => {
		const dir = await project("holdfast-lazy-cron-");
		await setUp(dir);
		const loaded = importsOf(dir, ["snapshots"]);
		expect(loaded.some((l) => l.includes("plugin-retention-planner"))).toBe(true);
		expect(loaded.filter((l) => /croner/.test(l) || SDK_LOAD.test(l))).toEqual([]);
	});
});
