import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DeleteBucketPolicyCommand, PutBucketPolicyCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { s3, uniqueBucket } from "../packages/plugin-b2/src/test-support/s3-subject.js";
import { holdfastAsync as holdfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";
import { projectEngine } from "./support/project-session.js";

const clients: S3Client[] = [];
afterAll(() => {
	for (const client of clients) client.destroy();
});

async function project(destination: string): Promise<string> {
	const dir = await tempDir("holdfast-doctor-");
	await mkdir(join(dir, "share"));
	await writeFile(join(dir, "share/plan.txt"), "the plan\n");
	await writeFile(
		join(dir, "holdfast.yaml"),
		`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-b2", "@holdfast/plugin-groom"]
password: { env: HOLDFAST_PASSWORD }
sets:
  office:
    sources: [{ type: fs, path: ./share }]
    destination: ${destination}
    retention: { days: 30, mode: compliance }
    groom: { match: retention }
`,
	);
	return dir;
}

/** What the RGW user `tester` may not do on `bucket` while the policy stands: a backup-only key. */
async function denyDeletes(bucket: string): Promise<() => Promise<void>> {
	const client = new S3Client({
		endpoint: s3?.endpoint,
		region: "us-east-1",
		forcePathStyle: true,
		credentials: { accessKeyId: s3?.accessKeyId as string, secretAccessKey: s3?.secretAccessKey as string },
	});
	clients.push(client);
	const Policy = JSON.stringify({
		Version: "2012-10-17",
		Statement: [
			{
				Effect: "Deny",
				Principal: { AWS: ["arn:aws:iam:::user/tester"] },
				Action: ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention"],
				Resource: [`arn:aws:s3:::${bucket}/*`],
			},
		],
	});
	await client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy }));
	return async () => {
		await client.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
	};
}

describe("holdfast doctor on a folder destination", () => {
	it("says the folder is missing before init, and after it that locks are only emulated", async () => {
		const dir = await project("{ type: fs, path: ./repo }");
		const before = await holdfast(dir, ["doctor"]);
		expect(before.code).toBe(1);
		expect(before.stdout).toMatch(/^folder +FAIL +\S+\/repo: no repository folder \(run "holdfast init"\)$/m);
		expect(before.stdout).toMatch(/^verdict: FAILED \(folder\)$/m);
		const init = await holdfast(dir, ["init"]);
		expect(init.code, init.stderr).toBe(0);
		expect(init.stdout).toContain("repository created\n\ndoctor: set office, fs:");
		const after = await holdfast(dir, ["doctor", "--json"]);
		expect(after.code).toBe(0);
		const [report] = JSON.parse(after.stdout);
		expect(report.verdict).toBe("warn");
		expect(report.findings.map((f: { check: string; status: string }) => `${f.check}:${f.status}`)).toEqual([
			"retention cap:ok",
			"folder:ok",
			"locks:warn",
		]);
	});
});

// Each test has a bucket of its own (and the deny policy is on its bucket only): they run side by side.
describe.skipIf(!s3).concurrent("holdfast doctor and key checks against the real S3 server", () => {
	const env = { TEST_KEY_ID: s3?.accessKeyId, TEST_SECRET: s3?.secretAccessKey };

	it("init runs the doctor; each backup with a key that may delete warns, and --strict-keys refuses it", async () => {
		const bucket = uniqueBucket("keys");
		const dir = await project(
			`{ type: s3, endpoint: "${s3?.endpoint}", bucket: ${bucket}, keyIdEnv: TEST_KEY_ID, secretEnv: TEST_SECRET }`,
		);
		const init = await holdfast(dir, ["init"], env);
		expect(init.code, init.stderr).toBe(0);
		expect(init.stdout).toMatch(/^delete versions +WARN +YES: /m);
		expect(init.stdout).toMatch(
			/^verdict: WARNING \(delete versions, delete markers, bypass governance\); not proven: other rights$/m,
		);
		const warning = `warning: office: the key backing up to s3:${bucket} can delete (a delete of a version that does not exist was not refused): give backups a key that cannot`;
		for (let run = 0; run < 2; run++) {
			const backup = await holdfast(dir, ["backup"], env);
			expect(backup.code, backup.stderr).toBe(0);
			expect(backup.stderr).toContain(warning);
		}
		const strict = await holdfast(dir, ["backup", "--strict-keys", "--json"], env);
		expect(strict.code).toBe(1);
		expect(strict.stdout).toBe("");
		expect(strict.stderr).toMatch(/refused by --strict-keys\n$/);
		// The refused run saved no snapshot (listed in this process: what is read is the engine's, not a command's output).
		expect(await projectEngine(dir, env)((engine) => engine.snapshots())).toHaveLength(2);

		const allow = await denyDeletes(bucket);
		try {
			const doctor = await holdfast(dir, ["doctor"], env);
			expect(doctor.code, doctor.stderr).toBe(0);
			expect(doctor.stdout).toMatch(/^delete versions +ok +no: /m);
			expect(doctor.stdout).toMatch(/^bypass governance +ok +no: /m);
			expect(doctor.stdout).toMatch(/^verdict: ok; not proven: other rights$/m);
			expect(doctor.stderr).toBe("");
			const backup = await holdfast(dir, ["backup", "--strict-keys"], env);
			expect(backup.code, backup.stderr).toBe(0);
			expect(backup.stderr).not.toContain("warning");
		} finally {
			await allow();
		}
	});

	it("grooming uses credentials.groom; backups never need it on the machine", async () => {
		const bucket = uniqueBucket("split");
		const dir = await project(
			`{ type: s3, endpoint: "${s3?.endpoint}", bucket: ${bucket}, credentials: { backup: { keyIdEnv: BACKUP_ID, secretEnv: BACKUP_SECRET }, groom: { keyIdEnv: GROOM_ID, secretEnv: GROOM_SECRET } } }`,
		);
		const backupKey = { BACKUP_ID: s3?.accessKeyId, BACKUP_SECRET: s3?.secretAccessKey };
		const groomKey = { GROOM_ID: s3?.accessKeyId, GROOM_SECRET: s3?.secretAccessKey };
		expect((await holdfast(dir, ["init"], backupKey)).code).toBe(0);
		const restore = await holdfast(dir, ["backup"], backupKey);
		expect(restore.code, restore.stderr).toBe(0);
		const groom = await holdfast(dir, ["groom"], backupKey);
		expect(groom.code).toBe(2);
		expect(groom.stderr).toBe(
			`holdfast: s3:${bucket}: no groom key: set GROOM_ID and GROOM_SECRET (named by destination.credentials.groom)\n`,
		);
		const doctor = await holdfast(dir, ["doctor", "--json"], backupKey);
		const [report] = JSON.parse(doctor.stdout);
		expect(report.findings.at(-1)).toEqual({
			check: "groom key",
			status: "ok",
			detail: "not on this machine (GROOM_ID unset): right where backups run; groom runs where it is",
		});
		const groomed = await holdfast(dir, ["groom"], groomKey);
		expect(groomed.code, groomed.stderr).toBe(0);
		const both = JSON.parse((await holdfast(dir, ["doctor", "--json"], { ...backupKey, ...groomKey })).stdout)[0];
		expect(both.findings.at(-1)).toMatchObject({ check: "groom key: delete versions", status: "ok" });
	});
});
