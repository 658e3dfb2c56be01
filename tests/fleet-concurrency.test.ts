import { join } from "node:path";
import type { SetConfig } from "@holdfast/core";
import { describe, expect, it } from "vitest";
import {
	checkClean,
	cli,
	type Expected,
	expectOk,
	FAST,
	fleet,
	type Machine,
	recordRound,
	restoreEverySnapshot,
	snapshots,
} from "./support/fleet.js";
import { tempDir } from "./support/harness.js";
import { projectEngine } from "./support/project-session.js";

/**
 * Machines of a fleet backing up into one folder at the same moment, with no lock: every
 * snapshot must restore bit for bit and check must find nothing wrong.
 */
describe("a fleet writing one repository at once", () => {
	// 16 spawned backups on a shared, small machine: each takes a few seconds of CPU alone.
	it("16 hosts back up overlapping trees into one folder at once; every snapshot restores exactly and check is clean", {
		timeout: 16 * 30_000,
	}, async () => {
		const root = await tempDir("holdfast-fleet-fs-");
		const repo = join(root, "repo");
		const machines = await fleet(root, 16, "fs", `{ type: fs, path: ${JSON.stringify(repo)} }`);
		const first = machines[0] as Machine;
		await projectEngine(first.dir, FAST)((engine) => engine.init());

		const results = await Promise.all(machines.map((m) => cli(m.dir, ["backup", "--json"])));
		expectOk(results, machines);
		const hosts = results.map((r) => JSON.parse(r.stdout).snapshot.host);
		expect(hosts).toEqual(machines.map((m) => m.host));

		const listed = await snapshots(first.dir);
		expect(listed.map((s) => s.host).sort()).toEqual(machines.map((m) => m.host));
		const expected: Expected = new Map();
		await recordRound(machines, listed, expected);
		const set: SetConfig = {
			sources: [{ type: "fs", path: join(root, "none") }],
			destination: { type: "fs", path: repo },
			retention: { days: 1, mode: "compliance" },
		};
		expect(await restoreEverySnapshot(set, expected)).toBe(16);
		await checkClean(first.dir);
	});
});
