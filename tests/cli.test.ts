import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { join, relative, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { holdfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";
import { projectEngine } from "./support/project-session.js";
import { describeTree, pseudoRandom } from "./support/trees.js";

const EXAMPLE_PLUGIN = resolve(import.meta.dirname, "../examples/plugin-audit-log");

function config(extra = "") {
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
      - { type: fs, path: ./data, exclude: ["*.tmp"] }
    destination: { type: fs, path: ./repo }
    retention: { days: 90, mode: compliance }
    schedule: { every: 7d }
    planner: { strategy: auto, missedRuns: 0, slackDays: 14 }
    groom: { match: retention }
`;
}

let dir: string;
beforeAll(async () => {
	dir = await tempDir("holdfast-cli-");
	await mkdir(join(dir, "data/sub"), { recursive: true });
	await writeFile(join(dir, "data/report.pdf"), pseudoRandom(300_000, 11));
	await writeFile(join(dir, "data/sub/notes.txt"), "notes\n");
	await writeFile(join(dir, "data/skip.tmp"), "excluded");
	await writeFile(join(dir, "holdfast.yaml"), config());
});

describe("holdfast CLI, spawned", () => {
	it("init, backup, snapshots, ls, restore: the quickstart round trip", () => {
		const init = holdfast(dir, ["init"]);
		expect(init.code).toBe(0);
		expect(init.stdout).toContain("repository created");
		expect(holdfast(dir, ["init"]).stdout).toContain("already exists; nothing changed");

		const backup = holdfast(dir, ["backup", "--json"]);
		expect(backup.code).toBe(0);
		const result = JSON.parse(backup.stdout);
		expect(result.snapshot.id).toMatch(/^[0-9a-f]{64}$/);
		expect(new Date(result.snapshot.protectUntil).getTime() - new Date(result.snapshot.time).getTime()).toBe(90 * 86_400_000);
		expect(result.files).toEqual({ new: 2, changed: 0, unchanged: 0, reincluded: 0, skipped: 0 });
		expect(result.bytes.read).toBe(300_006);
		expect(result.objects.uploaded).toBeGreaterThan(0);
		expect(result.warnings).toEqual([]);

		const list = JSON.parse(holdfast(dir, ["snapshots", "--json"]).stdout);
		expect(list).toHaveLength(1);
		expect(list[0]).toMatchObject({ id: result.snapshot.id, set: "docs", files: 2, bytes: 300_006 });
		expect(Object.keys(list[0]).sort()).toEqual([
			"bytes",
			"files",
			"host",
			"id",
			"paths",
			"protectUntil",
			"retentionDays",
			"set",
			"tier",
			"time",
		]);

		const ls = holdfast(dir, ["ls", "latest", "data/sub"]);
		expect(
			ls.stdout
				.trim()
				.split("\n")
				.map((l) => l.split(/\s+/).pop()),
		).toEqual(["data/sub", "data/sub/notes.txt"]);

		const restore = holdfast(dir, ["restore", "latest", "--target", "out"]);
		expect(restore.code).toBe(0);
		return Promise.all([describeTree(join(dir, "out/data")), describeTree(join(dir, "data"))]).then(([restored, original]) => {
			delete original["skip.tmp"];
			expect(restored).toEqual(original);
		});
	});

	it("check, plan, groom, status and plugins answer in JSON with the documented keys", async () => {
		const check = holdfast(dir, ["check", "--read-data", "--json"]);
		expect(check.code).toBe(0);
		const report = JSON.parse(check.stdout);
		expect(report.ok).toBe(true);
		expect(report.immutability).toMatchObject({ snapshots: 1, covered: 1, gaps: [] });

		const plan = JSON.parse(holdfast(dir, ["plan", "--json", "--at", "2099-01-01T00:00:00Z"]).stdout);
		expect(Object.keys(plan)).toEqual(expect.arrayContaining(["nextRun", "horizon", "reinclude", "extend", "upload"]));
		expect(plan.nextRun).toBe("2099-01-08T00:00:00.000Z");

		const groom = JSON.parse(holdfast(dir, ["groom", "--dry-run", "--json"]).stdout);
		expect(groom).toMatchObject({ forgotten: [], deleted: { objects: 0, bytes: 0 }, heldByLock: { objects: 0, bytes: 0 } });

		const status = JSON.parse(holdfast(dir, ["status", "--json"]).stdout);
		expect(status[0]).toMatchObject({ set: "docs", snapshots: 1, snapshotsInWindow: 1 });
		expect(status[0].storedBytes).toBeGreaterThan(0);

		const plugins = JSON.parse(holdfast(dir, ["plugins", "--json"]).stdout);
		expect(plugins.map((p: { name: string }) => p.name)).toEqual(["fs-source", "fs-destination", "retention-planner", "groom"]);
		expect(plugins[1].contributes).toEqual(["destination:fs"]);

		const schema = JSON.parse(holdfast(dir, ["config", "schema"]).stdout);
		expect(schema.properties.sets.additionalProperties.properties.destination.oneOf[0].properties.type.const).toBe("fs");
		expect(holdfast(dir, ["config", "check"]).stdout).toContain("holdfast.yaml: ok");
		// The planner and the groom plugin own their keys; the printed schema has them, defaults and all.
		const set = schema.properties.sets.additionalProperties.properties;
		expect(set.planner.properties.strategy.default).toBe("auto");
		expect(set.groom.properties.afterBackup.default).toBe(false);
		// With no config, the bundled plugins' keys are still there.
		const bare = JSON.parse(holdfast(await tempDir("holdfast-cli-schema-"), ["config", "schema"]).stdout);
		expect(Object.keys(bare.properties.sets.additionalProperties.properties)).toEqual(
			expect.arrayContaining(["retention", "schedule", "planner", "groom"]),
		);
	});

	it("exit codes and one-line errors: bad flag, missing config, wrong password, unknown snapshot", () => {
		const badFlag = holdfast(dir, ["backup", "--frobnicate"]);
		expect(badFlag.code).toBe(2);
		expect(badFlag.stderr.trim()).toBe("holdfast: Unknown argument: frobnicate");

		const missing = holdfast(dir, ["--config", "absent.yaml", "snapshots"]);
		expect(missing.code).toBe(2);
		expect(missing.stderr.trim().split("\n")).toHaveLength(1);

		const wrong = holdfast(dir, ["snapshots"], { HOLDFAST_PASSWORD: "not it" });
		expect(wrong.code).toBe(1);
		expect(wrong.stderr.trim()).toMatch(/^holdfast: wrong password for the repository at fs:.*repo$/);
		expect(wrong.stderr).not.toContain("    at ");

		const unknown = holdfast(dir, ["restore", "0123abcd", "--target", "x"]);
		expect(unknown.code).toBe(1);
		expect(unknown.stderr.trim()).toBe('holdfast: no snapshot "0123abcd"');

		const verbose = holdfast(dir, ["snapshots", "--verbose"], { HOLDFAST_PASSWORD: "not it" });
		expect(verbose.stderr).toContain("    at ");
	});

	it("an invalid config gives one line per problem with file and line, exit 2, nothing run", async () => {
		const bad = await tempDir("holdfast-cli-bad-");
		await writeFile(
			join(bad, "holdfast.yaml"),
			config().replace("days: 90", "days: 0").replace("slackDays: 14", "slackDays: 14, speed: 11"),
		);
		const result = holdfast(bad, ["backup"]);
		expect(result.code).toBe(2);
		expect(result.stderr.trim().split("\n")).toEqual([
			`holdfast: ${join(bad, "holdfast.yaml")}:13: sets.docs.retention.days: must be >= 1`,
			`holdfast: ${join(bad, "holdfast.yaml")}:15: sets.docs.planner.speed: unknown key`,
		]);
		expect(holdfast(bad, ["snapshots"]).code).toBe(2);
		// A destination's own options are checked by the schema of the plugin that provides it.
		await writeFile(join(bad, "holdfast.yaml"), config().replace("path: ./repo", "path: ./repo, colour: blue"));
		const typed = holdfast(bad, ["backup"]);
		expect(typed.code).toBe(2);
		expect(typed.stderr.trim()).toBe(`holdfast: ${join(bad, "holdfast.yaml")}:12: sets.docs.destination.colour: unknown key`);
	});

	it("exit code 3 when the run finished but skipped something", async () => {
		const partial = await tempDir("holdfast-cli-partial-");
		// A folder that links to its own parent is skipped (with a warning) when links are followed.
		await writeFile(join(partial, "holdfast.yaml"), config().replace("path: ./data,", "path: ./data, followSymlinks: true,"));
		await mkdir(join(partial, "data"));
		await writeFile(join(partial, "data/f"), "f");
		await symlink(".", join(partial, "data/loop"));
		expect(holdfast(partial, ["init"]).code).toBe(0);
		const result = holdfast(partial, ["backup", "--json"]);
		expect(result.code).toBe(3);
		expect(JSON.parse(result.stdout).warnings[0].path).toBe(join(partial, "data/loop"));
	});

	it("--help of every command has an example", () => {
		for (const command of ["init", "backup", "snapshots", "ls", "restore", "plan", "groom", "check", "daemon"]) {
			const help = holdfast(dir, [command, "--help"]);
			expect(help.code, command).toBe(0);
			expect(help.stdout, command).toContain("Examples:");
		}
	});

	it("--verbose shows the stack of the plugin code that failed, not only the core's frames", async () => {
		const failing = await tempDir("holdfast-cli-failing-plugin-");
		await writeFile(
			join(failing, "failing-plugin.mjs"),
			`export default {
	name: "failing",
	version: "1.0.0",
	engine: "^0.1.0",
	activate(context) {
		context.hooks.plan.tap("failing", function planOfTheFailingPlugin() {
			throw new Error("no plan today");
		});
	},
};
`,
		);
		await writeFile(join(failing, "holdfast.yaml"), config());
		await mkdir(join(failing, "data"));
		await writeFile(join(failing, "data/a"), "a");
		expect(holdfast(failing, ["init"]).code).toBe(0);
		await writeFile(join(failing, "holdfast.yaml"), config('  - "./failing-plugin.mjs"\n'));
		const quiet = holdfast(failing, ["backup"]);
		expect(quiet.code).toBe(1);
		expect(quiet.stderr.trim()).toBe("holdfast: docs: [failing] plan: no plan today");
		const verbose = holdfast(failing, ["backup", "--verbose"]);
		expect(verbose.stderr).toMatch(
			/caused by: Error: no plan today\n\s+at planOfTheFailingPlugin \(.*failing-plugin\.mjs:\d+:\d+\)/,
		);
	});

	it("loads a third-party plugin named by relative path; it sees every run", async () => {
		const withPlugin = await tempDir("holdfast-cli-plugin-");
		const relativePath = relative(withPlugin, EXAMPLE_PLUGIN);
		await writeFile(
			join(withPlugin, "holdfast.yaml"),
			config(`  - { use: "${relativePath}", options: { file: audit.jsonl } }\n`),
		);
		await mkdir(join(withPlugin, "data"));
		await writeFile(join(withPlugin, "data/a"), "a");
		expect(holdfast(withPlugin, ["init"]).code).toBe(0);
		expect(holdfast(withPlugin, ["backup"]).code).toBe(0);
		expect(holdfast(withPlugin, ["snapshots"], { HOLDFAST_PASSWORD: "nope" }).code).toBe(1);
		expect(holdfast(withPlugin, ["backup"]).code).toBe(0);
		const lines = (await readFile(join(withPlugin, "audit.jsonl"), "utf8"))
			.trim()
			.split("\n")
			.map((l) => JSON.parse(l));
		const runs = lines.filter((l) => l.event === "run");
		expect(runs.map((l) => [l.run, l.ok])).toEqual([
			["backup", true],
			["backup", true],
		]);
		expect(runs[0].snapshot).toMatch(/^[0-9a-f]{64}$/);
		// `init` is no run, yet the objects it writes are on record too.
		expect(lines.filter((l) => l.event === "object" && l.kind === "key").length).toBeGreaterThan(0);
		expect(lines.find((l) => l.event === "object" && l.key === `snapshots/${runs[0].snapshot}`)).toBeDefined();
		const badOptions = await tempDir("holdfast-cli-plugin-bad-");
		await writeFile(join(badOptions, "holdfast.yaml"), config(`  - { use: "${EXAMPLE_PLUGIN}", options: { file: 42 } }\n`));
		const refused = holdfast(badOptions, ["backup"]);
		expect(refused.code).toBe(2);
		expect(refused.stderr.trim()).toBe("holdfast: [audit-log] options: plugins.4.options.file: must be string");

		// A log that cannot be written fails the backup with the plugin's own line; the failure
		// again while the plugin closes is a warning after it, naming the plugin, never in its place.
		const unwritable = await tempDir("holdfast-cli-plugin-unwritable-");
		await mkdir(join(unwritable, "data"));
		await writeFile(join(unwritable, "data/a"), "a");
		await writeFile(join(unwritable, "holdfast.yaml"), config());
		expect(holdfast(unwritable, ["init"]).code).toBe(0);
		await writeFile(
			join(unwritable, "holdfast.yaml"),
			config(`  - { use: "${EXAMPLE_PLUGIN}", options: { file: /nonexistent-dir/audit.jsonl } }\n`),
		);
		const failed = holdfast(unwritable, ["backup"]);
		expect(failed.code).toBe(1);
		const said = failed.stderr.trim().split("\n");
		expect(said.at(-1)).toMatch(
			/^holdfast: docs: \[audit-log\] validate: cannot write the audit log \/nonexistent-dir\/audit\.jsonl: ENOENT/,
		);
		expect(said.slice(0, -1).every((line) => line.startsWith("warning: while closing: [audit-log] dispose: "))).toBe(true);
	});
});

describe("holdfast daemon", () => {
	it("runs the set on its schedule and stops cleanly on SIGTERM", async () => {
		const daemonDir = await tempDir("holdfast-daemon-");
		await mkdir(join(daemonDir, "data"));
		await writeFile(join(daemonDir, "data/a"), "a");
		await writeFile(
			join(daemonDir, "holdfast.yaml"),
			config().replace("schedule: { every: 7d }", `schedule: { cron: "*/2 * * * * *" }`),
		);
		await projectEngine(daemonDir)((engine) => engine.init());
		const { startHoldfast } = await import("./support/cli.js");
		const child = startHoldfast(daemonDir, ["daemon"]);
		let stderr = "";
		child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
		const exited = new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? -1)));
		// Two scheduled runs, 2 s apart (a cron with seconds: `every` takes a minute at least), then a stop request.
		for (let waited = 0; waited < 30_000 && (stderr.match(/docs: snapshot/g) ?? []).length < 2; waited += 200) {
			await new Promise((r) => setTimeout(r, 200));
		}
		child.kill("SIGTERM");
		expect(await exited).toBe(0);
		expect((stderr.match(/docs: snapshot/g) ?? []).length).toBeGreaterThanOrEqual(2);
		expect((await projectEngine(daemonDir)((engine) => engine.snapshots())).length).toBeGreaterThanOrEqual(2);
	});
});

describe("holdfast plan --forecast", () => {
	it("prices both strategies over a period, as a table and as JSON", async () => {
		// Idempotent: the quickstart test above may or may not have run first. Set up in this process; the forecast is the command.
		await projectEngine(dir)(async (engine) => {
			await engine.init();
			if ((await engine.snapshots()).length === 0) await engine.backup();
		});
		const table = holdfast(dir, ["plan", "--forecast", "180d", "--change-rate", "2"]);
		expect(table.code, table.stderr).toBe(0);
		expect(table.stdout).toMatch(/^forecast over 180 days, 26 runs/);
		expect(table.stdout).toMatch(/^extend\s/m);
		expect(table.stdout).toMatch(/^reinclude\s/m);
		const report = JSON.parse(holdfast(dir, ["plan", "--forecast", "180d", "--json"]).stdout);
		expect(report.assumptions).toMatchObject({ periodDays: 180, weeklyChangeRate: 0.01, retentionDays: 90, runs: 26 });
		expect(report.strategies.map((s: { strategy: string }) => s.strategy)).toEqual(["extend", "reinclude"]);
		expect(report.strategies[1].uploadBytes).toBeGreaterThan(report.strategies[0].uploadBytes);
	});
});

describe("retention against the destination's cap", () => {
	it("refuses at config time a retention the destination cannot hold", async () => {
		const capped = await tempDir("holdfast-cli-cap-");
		await writeFile(join(capped, "holdfast.yaml"), config().replace("path: ./repo", "path: ./repo, maxRetentionDays: 30"));
		for (const command of [["init"], ["config", "check"], ["snapshots"]]) {
			const result = holdfast(capped, command);
			expect(result.code, command.join(" ")).toBe(2);
			expect(result.stderr.trim()).toBe(
				`holdfast: ${join(capped, "holdfast.yaml")}:13: sets.docs.retention.days: 90 exceeds what fs:${join(capped, "repo")} allows (30 days)`,
			);
		}
	});
});
