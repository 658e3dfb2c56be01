import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import type { SetConfig } from "@holdfast/core";
import { describe, expect, it } from "vitest";
import { s3, TEST_ENV, uniqueBucket } from "../packages/plugin-b2/src/test-support/s3-subject.js";
import { type CliResult, holdfastAsync, startHoldfast } from "./support/cli.js";
import { createHarness, tempDir } from "./support/harness.js";
import { type Described, describeTree, pseudoRandom } from "./support/trees.js";

/**
 * Machines of a fleet backing up into one repository at the same moment, with no lock: every
 * snapshot must restore bit for bit and check must find nothing wrong, also when writers and a
 * groom are killed mid-run.
 */

const FAST = { HOLDFAST_SCRYPT_N: "1024" };
const KIB = 1024;

interface Machine {
	readonly host: string;
	readonly dir: string;
}

function config(host: string, destination: string, groom = "") {
	return `plugins:
  - "@holdfast/plugin-fs-source"
  - "@holdfast/plugin-fs-destination"
  - "@holdfast/plugin-b2"
  - "@holdfast/plugin-retention-planner"
  - "@holdfast/plugin-groom"
catalog: sqlite://./.holdfast/catalog.sqlite
password: { env: HOLDFAST_PASSWORD }
host: ${host}
sets:
  fleet:
    sources: [{ type: fs, path: ./data }]
    destination: ${destination}
    retention: { days: 1, mode: compliance }
${groom}`;
}

/**
 * Overlapping trees: files every host has (deduplicated across the fleet), files every other
 * host has, and files of its own; one shared file is large enough to be cut into chunks.
 */
async function writeData(dir: string, index: number, round: number, extraKiB = 0): Promise<void> {
	const files: Record<string, Buffer> = {
		"shared/big.bin": pseudoRandom(900 * KIB, 1),
		"shared/a.bin": pseudoRandom(120 * KIB, 2),
		"shared/notes.txt": Buffer.from("the same notes on every machine\n".repeat(400)),
		[`half/${index % 2}.bin`]: pseudoRandom(150 * KIB, 10 + (index % 2)),
		[`own/h${index}.bin`]: pseudoRandom(100 * KIB, 100 + index),
		[`own/round-${round}.txt`]: Buffer.from(`host ${index}, round ${round}\n`),
	};
	if (extraKiB > 0) files[`own/extra-${round}.bin`] = pseudoRandom(extraKiB * KIB, 1000 + 100 * round + index);
	for (const [path, content] of Object.entries(files)) {
		await mkdir(join(dir, "data", path, ".."), { recursive: true });
		await writeFile(join(dir, "data", path), content);
	}
}

async function fleet(root: string, count: number, prefix: string, destination: string, groom = ""): Promise<Machine[]> {
	const machines: Machine[] = [];
	for (let i = 1; i <= count; i++) {
		const host = `${prefix}${String(i).padStart(2, "0")}`;
		const dir = join(root, host);
		await mkdir(dir, { recursive: true });
		await writeFile(join(dir, "holdfast.yaml"), config(host, destination, groom));
		await writeData(dir, i, 1);
		machines.push({ host, dir });
	}
	return machines;
}

const cli = (dir: string, args: string[], env: NodeJS.ProcessEnv = {}) => holdfastAsync(dir, args, { ...FAST, ...env });

/** What each snapshot must restore to: its host's data as it was during the round that took it. */
type Expected = Map<string, Record<string, Described>>;

async function recordRound(machines: Machine[], listed: { id: string; host: string }[], expected: Expected): Promise<void> {
	const trees = new Map<string, Record<string, Described>>();
	for (const m of machines) trees.set(m.host, await describeTree(join(m.dir, "data")));
	for (const s of listed) if (!expected.has(s.id)) expected.set(s.id, trees.get(s.host) as Record<string, Described>);
}

async function snapshots(dir: string, env: NodeJS.ProcessEnv = {}): Promise<{ id: string; host: string }[]> {
	const result = await cli(dir, ["snapshots", "--json"], env);
	expect(result.code, result.stderr).toBe(0);
	return JSON.parse(result.stdout);
}

/** Every snapshot restored from the repository alone (a fresh catalog, no machine's cache) and compared exactly. */
async function restoreEverySnapshot(set: SetConfig, expected: Expected, env?: NodeJS.ProcessEnv): Promise<number> {
	const harness = await createHarness({
		start: new Date().toISOString(),
		plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-b2"],
		sets: () => ({ fleet: set }),
		...(env ? { env } : {}),
	});
	try {
		const refs = await harness.engine.snapshots("fleet");
		expect(refs.map((r) => r.id).sort()).toEqual([...expected.keys()].sort());
		for (const ref of refs) {
			const target = await tempDir("holdfast-fleet-restore-");
			await harness.engine.restore(ref.id, { setName: "fleet", target });
			expect(await describeTree(join(target, "data")), `snapshot of ${ref.snapshot.host}`).toEqual(expected.get(ref.id));
		}
		return refs.length;
	} finally {
		await harness.close();
	}
}

async function checkClean(dir: string, env: NodeJS.ProcessEnv = {}): Promise<void> {
	const result = await cli(dir, ["check", "--read-data", "--json"], env);
	expect(result.code, result.stderr).toBe(0);
	const report = JSON.parse(result.stdout);
	expect(report.errors).toEqual([]);
	expect(report.immutability.gaps).toEqual([]);
	expect(report.packsRead).toBeGreaterThan(0);
}

const expectOk = (results: CliResult[], machines: Machine[]) => {
	for (const [i, r] of results.entries()) expect(r.code, `${machines[i]?.host}: ${r.stderr}`).toBe(0);
};

describe("a fleet writing one repository at once", () => {
	// 16 spawned backups on a shared, small machine: each takes a few seconds of CPU alone.
	it("16 hosts back up overlapping trees into one folder at once; every snapshot restores exactly and check is clean", {
		timeout: 16 * 30_000,
	}, async () => {
		const root = await tempDir("holdfast-fleet-fs-");
		const repo = join(root, "repo");
		const machines = await fleet(root, 16, "fs", `{ type: fs, path: ${JSON.stringify(repo)} }`);
		const first = machines[0] as Machine;
		const init = await cli(first.dir, ["init"]);
		expect(init.code, init.stderr).toBe(0);

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
		const init = await cli(first.dir, ["init"], env);
		expect(init.code, init.stderr).toBe(0);
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
