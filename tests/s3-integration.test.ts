import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { DAY_MS } from "@holdfast/core";
import { afterAll, describe, expect, it } from "vitest";
import { B2StrictProxy } from "../packages/plugin-b2/src/test-support/b2-strict-proxy.js";
import { s3, TEST_ENV, uniqueBucket } from "../packages/plugin-b2/src/test-support/s3-subject.js";
import { holdfastAsync as holdfast } from "./support/cli.js";
import { createHarness, type Harness, setConfig, tempDir } from "./support/harness.js";
import { describeTree } from "./support/trees.js";

const proxies: B2StrictProxy[] = [];
let harness: Harness | undefined;
afterAll(async () => {
	await harness?.close();
	for (const proxy of proxies) await proxy.stop();
});

function s3Config(bucket: string, endpoint: string) {
	return `plugins:
  - "@holdfast/plugin-fs-source"
  - "@holdfast/plugin-b2"
  - "@holdfast/plugin-retention-planner"
  - "@holdfast/plugin-groom"
password: { env: HOLDFAST_PASSWORD }
sets:
  office:
    sources: [{ type: fs, path: ./share }]
    destination: { type: s3, endpoint: "${endpoint}", bucket: ${bucket}, keyIdEnv: TEST_KEY_ID, secretEnv: TEST_SECRET }
    retention: { days: 30, mode: compliance }
    schedule: { every: 1d }
`;
}

// The two blocks share nothing: the CLI's commands run while the groom test waits out its locks.
describe.skipIf(!s3).concurrent("the CLI against the real S3 server", () => {
	it("init creates a bucket with Object Lock; backup and restore work as the README shows", async () => {
		const proxy = await new B2StrictProxy(s3?.endpoint as string).start();
		proxies.push(proxy);
		const dir = await tempDir("holdfast-s3cli-");
		await mkdir(join(dir, "share/team"), { recursive: true });
		await writeFile(join(dir, "share/team/plan.txt"), "the plan\n");
		await writeFile(join(dir, "holdfast.yaml"), s3Config(uniqueBucket("cli"), proxy.endpoint));
		const env = { TEST_KEY_ID: s3?.accessKeyId, TEST_SECRET: s3?.secretAccessKey };
		const init = await holdfast(dir, ["init"], env);
		expect(init.code, init.stderr).toBe(0);
		expect(init.stdout).toMatch(/created bucket .* with Object Lock/);
		const backup = await holdfast(dir, ["backup", "--json"], env);
		expect(backup.code, backup.stderr).toBe(0);
		expect(JSON.parse(backup.stdout).files.new).toBe(1);
		expect((await holdfast(dir, ["restore", "latest", "--target", "out"], env)).code).toBe(0);
		expect(await describeTree(join(dir, "out/share"))).toEqual(await describeTree(join(dir, "share")));
		const check = JSON.parse((await holdfast(dir, ["check", "--json"], env)).stdout);
		expect(check.immutability).toMatchObject({ snapshots: 1, covered: 1, gaps: [] });
		// Secrets never reach the output.
		expect(backup.stdout + backup.stderr + init.stdout + init.stderr).not.toContain(s3?.secretAccessKey as string);
		expect(proxy.stats.rejected).toEqual([]);
	});

	it("refuses a bucket without Object Lock before writing anything, in one line", async () => {
		const bucket = uniqueBucket("nolock");
		const client = new S3Client({
			endpoint: s3?.endpoint,
			region: "us-east-1",
			forcePathStyle: true,
			credentials: { accessKeyId: s3?.accessKeyId as string, secretAccessKey: s3?.secretAccessKey as string },
		});
		await client.send(new CreateBucketCommand({ Bucket: bucket }));
		client.destroy();
		const dir = await tempDir("holdfast-s3cli-");
		await mkdir(join(dir, "share"));
		await writeFile(join(dir, "holdfast.yaml"), s3Config(bucket, s3?.endpoint as string));
		const env = { TEST_KEY_ID: s3?.accessKeyId, TEST_SECRET: s3?.secretAccessKey };
		const result = await holdfast(dir, ["init"], env);
		expect(result.code).toBe(1);
		expect(result.stderr.trim().split("\n")).toHaveLength(1);
		expect(result.stderr).toContain(`bucket ${bucket} has no Object Lock`);
	});
});

describe.skipIf(!s3).concurrent("grooming on the real S3 server", () => {
	it("deletes every version of what left the policy once the server's lock expired (not just a delete marker)", async () => {
		const proxy = await new B2StrictProxy(s3?.endpoint as string).start();
		proxies.push(proxy);
		const bucket = uniqueBucket("groom");
		harness = await createHarness({
			plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-b2", "@holdfast/plugin-groom"],
			env: TEST_ENV(),
			start: new Date().toISOString(),
			sets: (dir) => ({
				main: setConfig(dir, {
					destination: { type: "b2", bucket, endpoint: proxy.endpoint },
					retention: { days: 1, mode: "compliance" },
					groom: { match: "retention", graceHours: 0 },
				}),
			}),
		});
		await writeFile(join(harness.dir, "src/a.txt"), "short-lived");
		await harness.engine.init();
		// No plan may shorten a snapshot's promise, so the run is dated a day back instead: its one-day
		// locks end seconds from now on the server's own clock, with room for a slow backup to finish first.
		const lockEnds = Date.now() + 10_000;
		harness.clock.set(lockEnds - DAY_MS);
		const first = await harness.engine.backup();
		const open = await harness.engine.open();
		const packs = [...open.repository.index.packs.keys()];
		expect(packs.length).toBeGreaterThan(0);

		const early = await harness.engine.groom();
		expect(early.deleted.keys.filter((k) => k.startsWith("data/"))).toEqual([]);

		await new Promise((r) => setTimeout(r, Math.max(0, lockEnds - Date.now()) + 1500));
		harness.clock.set(Date.now());
		// A second backup, so the first is no longer the newest of its set (which always stays).
		await writeFile(join(harness.dir, "src/a.txt"), "replaced");
		await harness.engine.backup();
		const marking = await harness.engine.groom();
		expect(marking.forgotten).toEqual([first.snapshot?.id]);
		for (const pack of packs) expect(marking.marked.keys).toContain(pack);
		// graceHours 0: the next groom deletes what this one marked.
		const dry = await harness.engine.groom(undefined, { dryRun: true });
		const result = await harness.engine.groom();
		expect([...result.deleted.keys].sort()).toEqual([...dry.deleted.keys].sort());
		for (const pack of packs) expect(result.deleted.keys).toContain(pack);
		expect(result.deleted.keys).toContain(first.snapshot?.key);
		const remaining: string[] = [];
		for await (const version of open.repository.destination.listVersions(""))
			remaining.push(`${version.key}${version.isDeleteMarker ? " (marker)" : ""}`);
		for (const key of result.deleted.keys) expect(remaining.filter((r) => r.startsWith(key))).toEqual([]);
		expect(proxy.stats.rejected).toEqual([]);
	});
});
