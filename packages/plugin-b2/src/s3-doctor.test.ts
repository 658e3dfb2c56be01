import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
	CreateBucketCommand,
	DeleteBucketPolicyCommand,
	PutBucketPolicyCommand,
	PutObjectLockConfigurationCommand,
} from "@aws-sdk/client-s3";
import { type DoctorFinding, doctorVerdict } from "@holdfast/core";
import { afterAll, describe, expect, it } from "vitest";
import { S3Destination, type S3DestinationOptions } from "./s3-destination.js";
import { B2_PROFILE, S3_PROFILE } from "./s3-profiles.js";
import { B2_CAPABILITIES, FakeB2NativeApi } from "./test-support/b2-native-api.js";
import { B2StrictProxy } from "./test-support/b2-strict-proxy.js";
import { s3, TEST_ENV, uniqueBucket } from "./test-support/s3-subject.js";

const servers: { stop(): Promise<void> }[] = [];
afterAll(async () => {
	for (const server of servers) await server.stop();
});

const request = { retentionDays: 30, mode: "compliance" as const };

function row(findings: DoctorFinding[], check: string): DoctorFinding {
	const found = findings.find((f) => f.check === check);
	if (!found) throw new Error(`no finding "${check}" in ${findings.map((f) => f.check).join(", ")}`);
	return found;
}

/** A bucket with Object Lock on the test server, behind the B2-strict proxy, and B2's native API faked. */
async function b2Setup(options: Partial<S3DestinationOptions> = {}, env = TEST_ENV()) {
	if (!s3) throw new Error("no S3 test server");
	const proxy = await new B2StrictProxy(s3.endpoint).start();
	const native = await new FakeB2NativeApi().start();
	servers.push(proxy, native);
	const bucket = uniqueBucket("doc");
	const destination = new S3Destination(
		{ bucket, endpoint: proxy.endpoint, b2ApiUrl: native.url, maxAttempts: 4, ...options },
		B2_PROFILE,
		env,
	);
	expect((await destination.preflight({ ...request, create: true })).problems).toEqual([]);
	return { destination, native, bucket, proxy };
}

async function s3Setup() {
	if (!s3) throw new Error("no S3 test server");
	const bucket = uniqueBucket("doc");
	const destination = new S3Destination({ bucket, endpoint: s3.endpoint, maxAttempts: 4 }, S3_PROFILE, TEST_ENV());
	expect((await destination.preflight({ ...request, create: true })).problems).toEqual([]);
	return { destination, bucket };
}

/** The bucket policy of a backup-only user: everything but deleting and bypassing governance. */
function denyDeletes(bucket: string): string {
	return JSON.stringify({
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
}

describe.skipIf(!s3)("doctor on B2: the native API tells what the key may do", () => {
	it("a backup-only key restricted to the bucket passes, and the canary proves writes and locks", async () => {
		const { destination, native, bucket, proxy } = await b2Setup();
		native.setKey(s3?.accessKeyId as string, {
			secret: s3?.secretAccessKey as string,
			capabilities: B2_CAPABILITIES.backupOnly,
			bucket,
		});
		const findings = await destination.doctor(request);
		expect(findings.filter((f) => f.status !== "ok")).toEqual([]);
		expect(doctorVerdict(findings)).toBe("ok");
		expect(row(findings, "key scope").detail).toBe(`restricted to bucket ${bucket}`);
		expect(row(findings, "delete").detail).toBe("no (no deleteFiles)");
		expect(row(findings, "lock read back").detail).toMatch(/^governance until /);
		expect(row(findings, "extend lock").status).toBe("ok");
		// With B2's answer at hand, no delete is even tried.
		expect(findings.map((f) => f.check)).not.toContain("delete markers");
		expect(native.calls).toEqual([{ path: "/b2api/v3/b2_authorize_account", keyId: s3?.accessKeyId }]);
		expect(await destination.inspectAccess()).toEqual({
			canDelete: false,
			canBypassGovernance: false,
			how: "b2_authorize_account",
		});
		expect(proxy.stats.rejected).toEqual([]);
		await destination.close();
	});

	it("a master key warns loudly: it can delete, bypass governance, make keys and change the bucket", async () => {
		const { destination, native } = await b2Setup();
		native.setKey(s3?.accessKeyId as string, { secret: s3?.secretAccessKey as string, capabilities: B2_CAPABILITIES.master });
		const findings = await destination.doctor(request);
		expect(doctorVerdict(findings)).toBe("warn");
		expect(findings.filter((f) => f.status === "warn").map((f) => f.check)).toEqual([
			"key scope",
			"delete",
			"bypass governance",
			"key admin",
			"bucket settings",
		]);
		expect(row(findings, "delete").detail).toMatch(/^YES \(deleteFiles\)/);
		expect(row(findings, "key scope").detail).toMatch(/not restricted to a bucket/);
		expect(await destination.inspectAccess()).toMatchObject({ canDelete: true, canBypassGovernance: true });
		await destination.close();
	});

	it("a key restricted to another bucket fails, and says which bucket it is for", async () => {
		const { destination, native, bucket } = await b2Setup();
		native.setKey(s3?.accessKeyId as string, {
			secret: s3?.secretAccessKey as string,
			capabilities: B2_CAPABILITIES.backupOnly,
			bucket: "someone-elses",
		});
		const findings = await destination.doctor(request);
		expect(doctorVerdict(findings)).toBe("fail");
		expect(row(findings, "key scope")).toEqual({
			check: "key scope",
			status: "fail",
			detail: `restricted to someone-elses, not ${bucket}: every call will be refused`,
		});
		await destination.close();
	});

	it("when B2's native API refuses the key, says so and proves with probes instead", async () => {
		const { destination } = await b2Setup();
		const findings = await destination.doctor(request);
		expect(row(findings, "capabilities")).toMatchObject({ status: "unproven" });
		expect(row(findings, "capabilities").detail).toMatch(/^b2_authorize_account: HTTP 401 unauthorized/);
		// The test server's key may delete: the probes show it.
		expect(row(findings, "delete versions").status).toBe("warn");
		await destination.close();
	});

	it("never sends the key to B2's API for an endpoint that is not B2's, unless b2ApiUrl names it", async () => {
		const { destination, native } = await b2Setup({ b2ApiUrl: undefined });
		const findings = await destination.doctor(request);
		expect(row(findings, "capabilities")).toEqual({
			check: "capabilities",
			status: "unproven",
			detail: "B2's native API was not asked: the endpoint is not B2's (name it with b2ApiUrl)",
		});
		expect(row(findings, "delete versions").status).toBe("warn");
		expect((await destination.inspectAccess()).how).toBe("a delete of a version that does not exist was not refused");
		expect(native.calls).toEqual([]);
		await destination.close();
	});

	it("a missing bucket still gets B2's answer about the key, and no probe", async () => {
		const { native, proxy } = await b2Setup();
		const bucket = uniqueBucket("gone");
		native.setKey(s3?.accessKeyId as string, {
			secret: s3?.secretAccessKey as string,
			capabilities: B2_CAPABILITIES.backupOnly,
			bucket: "another",
		});
		const destination = new S3Destination({ bucket, endpoint: proxy.endpoint, b2ApiUrl: native.url }, B2_PROFILE, TEST_ENV());
		const findings = await destination.doctor(request);
		expect(findings.filter((f) => f.status === "fail").map((f) => f.check)).toEqual(["bucket", "key scope"]);
		expect(findings.map((f) => f.check)).not.toContain("delete versions");
		await destination.close();
	});

	it("checks the groom key on its own: absent from this machine is right, present it must be able to delete", async () => {
		const credentials = { groom: { keyIdEnv: "GROOM_ID", secretEnv: "GROOM_SECRET" } };
		const { destination, native, bucket } = await b2Setup({ credentials });
		const absent = destination.withKey("groom");
		expect(absent).toBeDefined();
		expect(await absent?.doctor({ ...request, keyOnly: true })).toEqual([
			{
				check: "groom key",
				status: "ok",
				detail: "not on this machine (GROOM_ID unset): right where backups run; groom runs where it is",
			},
		]);
		await expect(absent?.put("k", Buffer.from("x"))).rejects.toThrow(
			/: no groom key: set GROOM_ID and GROOM_SECRET \(named by destination\.credentials\.groom\)$/,
		);
		native.setKey("groomer", { secret: "groom-secret", capabilities: B2_CAPABILITIES.backupOnly, bucket });
		const groomer = new S3Destination({ bucket, endpoint: "http://127.0.0.1:9", b2ApiUrl: native.url, credentials }, B2_PROFILE, {
			...TEST_ENV(),
			GROOM_ID: "groomer",
			GROOM_SECRET: "groom-secret",
		}).withKey("groom");
		const findings = (await groomer?.doctor({ ...request, keyOnly: true })) ?? [];
		expect(row(findings, "groom key: needed capabilities")).toEqual({
			check: "groom key: needed capabilities",
			status: "fail",
			detail: "missing deleteFiles",
		});
		// Without credentials.groom, grooming uses the one key there is.
		expect(new S3Destination({ bucket }, B2_PROFILE, {}).withKey("groom")).toBeUndefined();
		await destination.close();
	});
});

describe.skipIf(!s3)("doctor on any S3: a canary proves what it can", () => {
	it("a key that may delete: each power shown by a probe that destroys nothing", async () => {
		const { destination } = await s3Setup();
		const findings = await destination.doctor(request);
		expect(doctorVerdict(findings)).toBe("warn");
		expect(findings.filter((f) => f.status === "warn").map((f) => f.check)).toEqual([
			"delete versions",
			"delete markers",
			"bypass governance",
		]);
		expect(row(findings, "other rights").status).toBe("unproven");
		expect(await destination.inspectAccess()).toMatchObject({ canDelete: true });
		// The canary's locked version is still there: only a delete marker hides it.
		const versions = [];
		for await (const v of destination.listVersions("doctor/")) versions.push(v);
		expect(versions.filter((v) => !v.isDeleteMarker)).toHaveLength(1);
		expect(versions.filter((v) => v.isDeleteMarker)).toHaveLength(1);
		await destination.close();
	});

	it("a user whose bucket policy denies deletes and bypass: proven unable, verdict ok", async () => {
		const { destination, bucket } = await s3Setup();
		const client = await destination.client();
		await client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: denyDeletes(bucket) }));
		try {
			const findings = await destination.doctor(request);
			expect(doctorVerdict(findings)).toBe("ok");
			expect(row(findings, "delete versions")).toMatchObject({ status: "ok" });
			expect(row(findings, "delete markers")).toMatchObject({ status: "ok" });
			expect(row(findings, "bypass governance")).toMatchObject({ status: "ok" });
			expect(row(findings, "write + lock")).toMatchObject({ status: "ok" });
			expect(await destination.inspectAccess()).toMatchObject({ canDelete: false });
			const versions = [];
			for await (const v of destination.listVersions("doctor/")) versions.push(v);
			expect(versions.map((v) => v.isDeleteMarker)).toEqual([false]);
			expect(versions[0]?.lock ?? (await destination.head(versions[0]?.key ?? "", versions[0]?.versionId))?.lock).toMatchObject({
				mode: "governance",
			});
		} finally {
			await client.send(new DeleteBucketPolicyCommand({ Bucket: bucket }));
			await destination.close();
		}
	});

	it("a bucket without Object Lock fails and gets no canary; a COMPLIANCE default against a governance set fails", async () => {
		const bucket = uniqueBucket("nolock");
		const plain = new S3Destination({ bucket, endpoint: s3?.endpoint }, S3_PROFILE, TEST_ENV());
		await (await plain.client()).send(new CreateBucketCommand({ Bucket: bucket }));
		const findings = await plain.doctor(request);
		expect(findings.filter((f) => f.status === "fail").map((f) => f.check)).toEqual(["Object Lock", "versioning"]);
		expect(findings.map((f) => f.check)).not.toContain("write + lock");
		await plain.close();

		const { destination, bucket: locked } = await s3Setup();
		await (await destination.client()).send(
			new PutObjectLockConfigurationCommand({
				Bucket: locked,
				ObjectLockConfiguration: { ObjectLockEnabled: "Enabled", Rule: { DefaultRetention: { Mode: "COMPLIANCE", Days: 1 } } },
			}),
		);
		const governance = await destination.doctor({ ...request, mode: "governance" });
		expect(row(governance, "default retention")).toEqual({
			check: "default retention",
			status: "fail",
			detail: "COMPLIANCE 1 day, but the set locks in governance mode: make them agree",
		});
		expect(row(await destination.doctor(request), "default retention").status).toBe("ok");
		await destination.close();
	});

	it("reports a missing bucket and stops there, without probing", async () => {
		const destination = new S3Destination({ bucket: uniqueBucket("none"), endpoint: s3?.endpoint }, S3_PROFILE, TEST_ENV());
		const findings = await destination.doctor(request);
		expect(row(findings, "bucket")).toMatchObject({ status: "fail" });
		expect(row(findings, "bucket").detail).toMatch(/does not exist \(holdfast init creates it with Object Lock\)$/);
		expect(findings.map((f) => f.check)).not.toContain("delete versions");
		await destination.close();
	});
});

describe("doctor's clock check", () => {
	it("compares this machine's clock with the server's Date header", async () => {
		const server = createServer((req, res) => {
			req.resume();
			res.writeHead(200, { date: new Date(Date.now() - 3 * 3_600_000).toUTCString(), "content-length": "0" });
			res.end();
		});
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		servers.push({ stop: () => new Promise<void>((resolve) => server.close(() => resolve())) });
		const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
		const destination = new S3Destination({ bucket: "skewed", endpoint, maxAttempts: 1 }, S3_PROFILE, {
			AWS_ACCESS_KEY_ID: "k",
			AWS_SECRET_ACCESS_KEY: "s",
		});
		const findings = await destination.doctor(request).catch(() => [] as DoctorFinding[]);
		expect(row(findings, "clock")).toEqual({
			check: "clock",
			status: "warn",
			detail:
				"this machine's clock is 3 h ahead of the server's: locks are dated from it, so they end that much later than planned; set the clock (NTP)",
		});
		await destination.close();
	});
});
