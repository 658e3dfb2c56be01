import { join } from "node:path";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import type { SetConfig } from "@holdfast/core";
import { describe, expect, it } from "vitest";
import { s3, TEST_ENV, uniqueBucket } from "../packages/plugin-b2/src/test-support/s3-subject.js";
import { startHoldfast } from "./support/cli.js";
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
	writeData,
} from "./support/fleet.js";
import { tempDir } from "./support/harness.js";
import { projectEngine } from "./support/project-session.js";

/**
 * Machines of a fleet backing up into one bucket at the same moment, with no lock, and a groom
 * among them: every snapshot must restore bit for bit and check must find nothing wrong, also
 * when writers and the groom are killed mid-run.
 */
/** Objects under `data/` in the bucket: how a test sees that writers have started uploading. */
async function packCount(client: S3Client, bucket: string): Promise<number> {
	let count = 0;
	let token: string | undefined;
	do {
		const page = await client.send(
			new ListObjectsV2Command({ Bucket: bucket, Prefix: "data/", ...(token ? { ContinuationToken: token } : {}) }),
		);
		count += page.KeyCount ?? 0;
		token = page.IsTruncated ? page.NextContinuationToken : undefined;
	} while (token);
	return count;
}

const exited = (child: ReturnType<typeof startHoldfast>) =>
	new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
		let stderr = "";
		child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
		child.on("close", (code, signal) => resolve({ code, signal, stderr }));
	});

describe.skipIf(!s3)("a fleet writing one bucket at once, with a groom", () => {
	it("8 hosts and a groom at once, then again with two writers and the groom killed: every snapshot restores from the bucket alone", {
		timeout: 3 * 8 * 40_000,
	}, async () => {
		const server = s3 as NonNullable<typeof s3>;
		const bucket = uniqueBucket("fleet");
		const env = { TEST_KEY_ID: server.accessKeyId, TEST_SECRET: server.secretAccessKey };
		const destination = `{ type: s3, endpoint: "${server.endpoint}", bucket: ${bucket}, keyIdEnv: TEST_KEY_ID, secretEnv: TEST_SECRET }`;
		// No grace: the groom marks whatever no snapshot needs yet, live writers' packs included,
		// so the writers must store again what a mark catches before their snapshots.
		const root = await tempDir("holdfast-fleet-s3-");
		const machines = await fleet(root, 8, "s3", destination, "    groom: { match: retention, graceHours: 0 }\n");
		const first = machines[0] as Machine;
		await projectEngine(first.dir, { ...FAST, ...env })((engine) => engine.init());
		const client = new S3Client({
			endpoint: server.endpoint,
			region: "us-east-1",
			forcePathStyle: true,
			credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
		});
		const expected: Expected = new Map();
		const set: SetConfig = {
			sources: [{ type: "fs", path: join(root, "none") }],
			destination: { type: "s3", endpoint: server.endpoint, bucket },
			retention: { days: 1, mode: "compliance" },
		};
		try {
			// Round 1: all eight at once; the groom starts once the first has finished, the rest still running.
			let finished = 0;
			const writers = machines.map((m) => cli(m.dir, ["backup", "--json"], env).finally(() => finished++));
			await Promise.race(writers);
			const groomRun = cli(first.dir, ["groom", "--json"], env);
			// The groom is started while writers are still running, not after them.
			expect(finished).toBeLessThan(machines.length);
			const groom = await groomRun;
			expect(groom.code, groom.stderr).toBe(0);
			expectOk(await Promise.all(writers), machines);
			await recordRound(machines, await snapshots(first.dir, env), expected);
			expect(expected.size).toBe(8);

			// Round 2: new data everywhere (more for the two victims, so they are still uploading when
			// killed); a groom runs alongside and is killed too, once packs of this round appear.
			const victims = new Set([2, 5]);
			for (const [i, m] of machines.entries()) await writeData(m.dir, i + 1, 2, victims.has(i) ? 2048 : 64);
			const before = await packCount(client, bucket);
			const children = machines.map((m) => startHoldfast(m.dir, ["backup"], { ...FAST, ...env }));
			const ends = children.map(exited);
			const groomChild = startHoldfast(first.dir, ["groom"], { ...FAST, ...env });
			const groomEnd = exited(groomChild);
			while ((await packCount(client, bucket)) <= before) await new Promise((r) => setTimeout(r, 100));
			for (const i of victims) children[i]?.kill("SIGKILL");
			groomChild.kill("SIGKILL");
			const outcomes = await Promise.all(ends);
			for (const [i, outcome] of outcomes.entries()) {
				if (victims.has(i)) expect(outcome.signal, `${machines[i]?.host} was killed mid-run`).toBe("SIGKILL");
				else expect(outcome.code, `${machines[i]?.host}: ${outcome.stderr}`).toBe(0);
			}
			await groomEnd;
			await recordRound(machines, await snapshots(first.dir, env), expected);
			expect(expected.size).toBe(14);

			// Round 3: the next runs of every host, and a groom, complete.
			for (const [i, m] of machines.entries()) await writeData(m.dir, i + 1, 3, 32);
			const next = await Promise.all(machines.map((m) => cli(m.dir, ["backup", "--json"], env)));
			expectOk(next, machines);
			const after = await cli(first.dir, ["groom", "--json"], env);
			expect(after.code, after.stderr).toBe(0);
			await recordRound(machines, await snapshots(first.dir, env), expected);
			expect(expected.size).toBe(22);

			expect(await restoreEverySnapshot(set, expected, TEST_ENV())).toBe(22);
			await checkClean(first.dir, env);
		} finally {
			client.destroy();
		}
	});
});
