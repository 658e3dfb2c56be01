import { spawnSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { HOLDFAST_BIN, holdfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";
import { projectEngine } from "./support/project-session.js";

/** Machines of a fleet backing up into one repository: each is told apart by the host its snapshots record. */

const FAST = { HOLDFAST_SCRYPT_N: "1024" };

async function writeTree(dir: string, files: Record<string, string>) {
	for (const [path, content] of Object.entries(files)) {
		await mkdir(join(dir, path, ".."), { recursive: true });
		await writeFile(join(dir, path), content);
	}
}

function config(repo: string, host?: string) {
	return `plugins:
  - "@holdfast/plugin-fs-source"
  - "@holdfast/plugin-fs-destination"
  - "@holdfast/plugin-retention-planner"
  - "@holdfast/plugin-groom"
catalog: sqlite://./.holdfast/catalog.sqlite
password: { env: HOLDFAST_PASSWORD }
${host === undefined ? "" : `host: ${JSON.stringify(host)}\n`}sets:
  docs:
    sources:
      - { type: fs, path: ./data }
    destination: { type: fs, path: ${JSON.stringify(repo)} }
    retention: { days: 30, mode: compliance }
    schedule: { every: 1d }
    planner: { strategy: auto, missedRuns: 1, slackDays: 5 }
`;
}

async function machine(root: string, name: string, repo: string, host: string | undefined, files: Record<string, string>) {
	const dir = join(root, name);
	await writeTree(join(dir, "data"), files);
	await writeTree(dir, { "holdfast.yaml": config(repo, host) });
	return dir;
}

const run = (dir: string, args: string[]) => holdfast(dir, args, FAST);
const json = (dir: string, args: string[]) => {
	const result = run(dir, [...args, "--json"]);
	expect(result.code, result.stderr).toBe(0);
	return JSON.parse(result.stdout);
};

describe("hosts of a fleet in one repository", () => {
	it("records the configured host, lists and restores by host, and marks the host that stopped backing up", async () => {
		const root = await tempDir("holdfast-fleet-hosts-");
		const repo = join(root, "repo");
		const alpha = await machine(root, "alpha", repo, "alpha", { "a.txt": "alpha's file", "shared.txt": "same" });
		const beta = await machine(root, "beta", repo, "beta", { "b.txt": "beta's file", "shared.txt": "same" });
		// alpha's repository and first snapshot are made in this process: the commands under test come after.
		await projectEngine(alpha, FAST)((engine) => engine.init());
		await projectEngine(alpha, FAST, new Date("2027-01-01T00:00:00Z"))((engine) => engine.backup());
		const first = json(beta, ["backup", "--now", "2027-01-01T01:00:00Z"]);
		expect(first.snapshot.host).toBe("beta");
		expect(json(beta, ["backup", "--now", "2027-01-05T00:00:00Z"]).snapshot.host).toBe("beta");

		const all = json(alpha, ["snapshots"]);
		expect(all.map((s: { host: string }) => s.host)).toEqual(["alpha", "beta", "beta"]);
		const ofAlpha = json(beta, ["snapshots", "--host", "alpha"]);
		expect(ofAlpha).toHaveLength(1);
		expect(ofAlpha[0].host).toBe("alpha");
		// No rows for a host that never backed up: one line that names the hosts there are instead.
		expect(run(beta, ["snapshots", "--host", "gamma"]).stdout).toMatch(
			/^no snapshots from host "gamma"; snapshots here are of set \S+ from hosts alpha, beta\n$/,
		);

		// status of a host that never backed up is what monitoring asks about: a line and exit 1, not an empty table.
		const never = run(beta, ["status", "--host", "gamma"]);
		expect(never.code).toBe(1);
		expect(never.stderr).toBe('holdfast: no snapshots from host "gamma"; hosts here: alpha, beta\n');

		// `latest --host alpha` is alpha's newest, though beta backed up since.
		const target = join(root, "restored-alpha");
		const restored = json(beta, ["restore", "latest", "--host", "alpha", "--target", target]);
		expect(restored.host).toBe("alpha");
		expect(restored.snapshot).toBe(ofAlpha[0].id);
		expect(await readFile(join(target, "data", "a.txt"), "utf8")).toBe("alpha's file");
		const listedAlpha = run(beta, ["ls", "latest", "--host", "alpha"]).stdout;
		expect(listedAlpha).toContain("data/a.txt");
		expect(listedAlpha).not.toContain("data/b.txt");
		const missing = run(beta, ["restore", "latest", "--host", "gamma", "--target", join(root, "none")]);
		expect(missing.code).not.toBe(0);
		expect(missing.stderr).toContain("there are no snapshots of set docs from host gamma yet");

		// Every 1d with missedRuns 1: alpha, last seen four days ago, has missed more than the planner allows.
		const status = json(beta, ["status", "--now", "2027-01-05T12:00:00Z"]);
		expect(status.map((r: { host: string }) => r.host)).toEqual(["alpha", "beta"]);
		expect(status[0]).toMatchObject({ host: "alpha", lastBackup: "2027-01-01T00:00:00.000Z", missed: true, snapshots: 1 });
		expect(status[1]).toMatchObject({ host: "beta", lastBackup: "2027-01-05T00:00:00.000Z", missed: false, snapshots: 2 });
		expect(status[1].nextRun).toBe("2027-01-06T00:00:00.000Z");
		const table = run(beta, ["status", "--now", "2027-01-05T12:00:00Z"]).stdout;
		expect(table).toMatch(/^docs\s+alpha\s+2027-01-01 00:00 UTC\s+MISSED/m);
		expect(table).toMatch(/^docs\s+beta\s+2027-01-05 00:00 UTC\s+2027-01-06 00:00 UTC/m);
		expect(table).not.toContain("\x1b[");
		// On a terminal the missed host's line is red, the other is not.
		const command = [process.execPath, HOLDFAST_BIN, "status", "--now", "2027-01-05T12:00:00Z"].join(" ");
		const tty = spawnSync("script", ["-qec", command, "/dev/null"], {
			cwd: beta,
			encoding: "utf8",
			env: { ...process.env, ...FAST, HOLDFAST_PASSWORD: "correct horse", NO_COLOR: "" },
		});
		expect(tty.status, tty.stdout).toBe(0);
		const lines = tty.stdout.split(/\r?\n/);
		const red = "\u001b[31m";
		expect(lines.find((l) => l.includes("alpha"))?.startsWith(`${red}docs`)).toBe(true);
		expect(lines.find((l) => l.includes("alpha"))).toContain("MISSED");
		expect(lines.find((l) => l.includes("beta"))?.startsWith("docs")).toBe(true);
		// A machine's own due time ignores other hosts' backups: alpha is overdue, from alpha too.
		const fromAlpha = json(alpha, ["status", "--host", "alpha", "--now", "2027-01-05T12:00:00Z"]);
		expect(fromAlpha).toHaveLength(1);
		expect(fromAlpha[0]).toMatchObject({ host: "alpha", overdue: true, missed: true });
		// And alpha's next backup is told of the runs it missed, though beta backed up meanwhile.
		const late = run(alpha, ["backup", "--now", "2027-01-05T06:00:00Z"]);
		expect(late.code, late.stderr).toBe(0);
		expect(late.stderr).toContain("4 scheduled run(s) missed since the last backup (2027-01-01T00:00:00.000Z)");
	});

	it("without `host:` a snapshot records the machine's hostname; an empty host is refused in one line", async () => {
		const root = await tempDir("holdfast-fleet-default-");
		const dir = await machine(root, "m", join(root, "repo"), undefined, { "a.txt": "a" });
		await projectEngine(dir, FAST)((engine) => engine.init());
		expect(json(dir, ["backup"]).snapshot.host).toBe(hostname());
		const empty = await machine(root, "e", join(root, "repo"), "", { "a.txt": "a" });
		const refused = run(empty, ["snapshots"]);
		expect(refused.code).not.toBe(0);
		expect(refused.stderr.trim().split("\n")).toHaveLength(1);
		expect(refused.stderr).toMatch(/holdfast\.yaml:\d+: host/);
	});
});
