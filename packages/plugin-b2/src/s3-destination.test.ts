import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { destinationConformance } from "@holdfast/core/testing";
import { afterAll, describe, expect, it } from "vitest";
import { S3Destination } from "./s3-destination.js";
import { B2_PROFILE } from "./s3-profiles.js";
import type { B2StrictProxy } from "./test-support/b2-strict-proxy.js";
import { b2Destination, s3, TEST_ENV, uniqueBucket } from "./test-support/s3-subject.js";

const proxies: B2StrictProxy[] = [];
afterAll(async () => {
	for (const proxy of proxies) await proxy.stop();
	// Every request the plugin made passed B2's header checks.
	for (const proxy of proxies) expect(proxy.stats.rejected).toEqual([]);
});

describe.skipIf(!s3)("S3 destination on the real test server (through the B2-strict proxy)", () => {
	destinationConformance("b2 profile on Ceph RGW", async () => {
		const { destination, proxy } = await b2Destination();
		proxies.push(proxy);
		const check = await destination.preflight({ mode: "compliance", create: true });
		expect(check.problems).toEqual([]);
		return {
			destination,
			now: () => new Date(),
			passTime: async (until) => {
				while (Date.now() <= until.getTime() + 1000) await new Promise((r) => setTimeout(r, 250));
			},
			shortLockMs: 3000,
			dispose: async () => destination.close?.(),
		};
	});

	it("refuses a bucket without Object Lock in one line that says how to fix it", async () => {
		const { destination, store, proxy } = await b2Destination();
		proxies.push(proxy);
		const { CreateBucketCommand } = await import("@aws-sdk/client-s3");
		await (await store.client()).send(
			new CreateBucketCommand({ Bucket: (store as unknown as { options: { bucket: string } }).options.bucket }),
		);
		const check = await destination.preflight({ mode: "compliance", create: false });
		expect(check.ok).toBe(false);
		expect(check.problems).toHaveLength(1);
		expect(check.problems[0]).toMatch(
			/has no Object Lock, which can only be enabled when a bucket is created: create a new bucket/,
		);
		await destination.close?.();
	});

	it("declares B2's 3,000-day cap (the core refuses a longer retention) and refuses a missing bucket", async () => {
		const { destination, proxy } = await b2Destination();
		proxies.push(proxy);
		expect(destination.capabilities.maxRetentionDays).toBe(3000);
		const check = await destination.preflight({ mode: "compliance", create: false });
		expect(check.ok).toBe(false);
		expect(check.problems[0]).toMatch(/does not exist \(holdfast init creates it with Object Lock\)/);
		await destination.close?.();
	});

	it("rides out throttling (503 SlowDown) and dropped connections, composed as the engine composes it", async () => {
		const { destination, proxy } = await b2Destination();
		proxies.push(proxy);
		await destination.preflight({ mode: "compliance", create: true });
		proxy.throttle(3);
		const lock = { mode: "compliance" as const, until: new Date(Date.now() + 60_000) };
		await destination.put("retry/a", Buffer.from("through the storm"), lock);
		proxy.dropConnections(2);
		expect(Buffer.from(await destination.get("retry/a")).toString()).toBe("through the storm");
		expect(proxy.stats.faultsInjected).toBe(5);
		await destination.close?.();
	});

	it("starts a listing after the key it is given, as the retry layer resumes one", async () => {
		const { destination, proxy } = await b2Destination();
		proxies.push(proxy);
		await destination.preflight({ mode: "compliance", create: true });
		const lock = { mode: "compliance" as const, until: new Date(Date.now() + 60_000) };
		for (const key of ["l/a", "l/b", "l/c"]) await destination.put(key, Buffer.from(key), lock);
		await destination.put("l/b", Buffer.from("again"), lock);
		const versions: string[] = [];
		for await (const version of destination.listVersions("l/", { startAfter: "l/a" })) versions.push(version.key);
		expect(versions).toEqual(["l/b", "l/b", "l/c"]);
		const keys: string[] = [];
		for await (const object of destination.list("l/", { startAfter: "l/b" })) keys.push(object.key);
		expect(keys).toEqual(["l/c"]);
		await destination.close?.();
	});

	it("sends no checksum header B2 rejects on any call, and Content-MD5 on every locked PUT", async () => {
		const { destination, proxy } = await b2Destination();
		proxies.push(proxy);
		await destination.preflight({ mode: "governance", create: true });
		const until = new Date(Date.now() + 2000);
		const { versionId } = await destination.put("h/a", Buffer.from("x"), { mode: "governance", until });
		await destination.extendLock("h/a", versionId, { mode: "governance", until: new Date(until.getTime() + 1000) });
		await destination.deleteVersion("h/a", versionId, { bypassGovernance: true });
		expect(proxy.stats.rejected).toEqual([]);
		expect(proxy.stats.missingMd5).toBe(0);
		expect(proxy.stats.byMethod.PUT).toBeGreaterThanOrEqual(3);
		await destination.close?.();
	});

	it("uploads a file with Content-MD5, reading it again whole when a connection drops", async () => {
		const { destination, proxy } = await b2Destination();
		proxies.push(proxy);
		await destination.preflight({ mode: "compliance", create: true });
		const dir = await mkdtemp(join(tmpdir(), "s3-put-file-"));
		try {
			const path = join(dir, "pack");
			const bytes = Buffer.from(Array.from({ length: 600_000 }, (_, i) => (i * 7) % 253));
			await writeFile(path, bytes);
			const lock = { mode: "compliance" as const, until: new Date(Date.now() + 60_000) };
			const before = proxy.stats.faultsInjected;
			proxy.dropConnections(2);
			const { versionId } = await (destination.putFile as NonNullable<typeof destination.putFile>).call(destination, {
				key: "f/pack",
				path,
				size: bytes.length,
				lock,
			});
			expect(proxy.stats.faultsInjected).toBe(before + 2);
			expect(Buffer.from(await destination.get("f/pack", { versionId })).equals(bytes)).toBe(true);
			expect((await destination.head("f/pack", versionId))?.size).toBe(bytes.length);
			expect(proxy.stats.missingMd5).toBe(0);
		} finally {
			await rm(dir, { recursive: true, force: true });
			await destination.close?.();
		}
	});

	it("sends the Content-MD5 it is given with a file: a wrong one is refused, the right one stored", async () => {
		const { destination, proxy } = await b2Destination();
		proxies.push(proxy);
		await destination.preflight({ mode: "compliance", create: true });
		expect(destination.capabilities.fileDigests).toEqual(["md5"]);
		const dir = await mkdtemp(join(tmpdir(), "s3-put-file-md5-"));
		try {
			const path = join(dir, "pack");
			const bytes = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 11) % 251));
			await writeFile(path, bytes);
			const lock = { mode: "compliance" as const, until: new Date(Date.now() + 60_000) };
			const putFile = destination.putFile as NonNullable<typeof destination.putFile>;
			const wrong = createHash("md5").update("other bytes").digest("base64");
			await expect(
				putFile.call(destination, { key: "f/wrong", path, size: bytes.length, lock, digests: { md5: wrong } }),
			).rejects.toThrow();
			expect(await destination.head("f/wrong")).toBeUndefined();
			const md5 = createHash("md5").update(bytes).digest("base64");
			const { versionId } = await putFile.call(destination, { key: "f/right", path, size: bytes.length, lock, digests: { md5 } });
			expect(Buffer.from(await destination.get("f/right", { versionId })).equals(bytes)).toBe(true);
		} finally {
			await rm(dir, { recursive: true, force: true });
			await destination.close?.();
		}
	});

	it("names the variables to set when credentials are missing, without printing any secret", async () => {
		const destination = new S3Destination({ bucket: uniqueBucket(), region: "us-west-004" }, B2_PROFILE, {});
		await expect(destination.put("k", Buffer.from("x"))).rejects.toThrow(
			"b2:" +
				(destination.description.split(":")[1] ?? "") +
				": no credentials: set B2_APPLICATION_KEY_ID or AWS_ACCESS_KEY_ID and B2_APPLICATION_KEY or AWS_SECRET_ACCESS_KEY (or name other variables with keyIdEnv/secretEnv)",
		);
		void TEST_ENV;
	});
});
