import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Destination, ObjectVersion } from "@holdfast/core";
import { afterAll, describe, expect, it } from "vitest";
import { B2StrictProxy } from "../packages/plugin-b2/src/test-support/b2-strict-proxy.js";
import { s3, TEST_ENV, uniqueBucket } from "../packages/plugin-b2/src/test-support/s3-subject.js";
import { createHarness, type Harness, setConfig } from "./support/harness.js";
import { describeTree, pseudoRandom } from "./support/trees.js";

const PLUGINS = [
	"@holdfast/plugin-fs-source",
	"@holdfast/plugin-b2",
	"@holdfast/plugin-retention-planner",
	"@holdfast/plugin-groom",
];
let harness: Harness | undefined;
let proxy: B2StrictProxy | undefined;
afterAll(async () => {
	await harness?.close();
	await proxy?.stop();
});

interface AttackReport {
	attempted: Record<string, number>;
	refused: Record<string, number>;
}

/** Everything the backup's own credentials allow against the bucket, every refusal counted. */
async function attack(destination: Destination): Promise<AttackReport> {
	const report: AttackReport = { attempted: {}, refused: {} };
	const attempt = async (what: string, call: () => Promise<unknown>) => {
		report.attempted[what] = (report.attempted[what] ?? 0) + 1;
		try {
			await call();
		} catch {
			report.refused[what] = (report.refused[what] ?? 0) + 1;
		}
	};
	const versions: ObjectVersion[] = [];
	for await (const version of destination.listVersions("")) if (!version.isDeleteMarker) versions.push(version);
	for (const version of versions) {
		await attempt("delete version", () => destination.deleteVersion(version.key, version.versionId));
		await attempt("delete version bypassing governance", () =>
			destination.deleteVersion(version.key, version.versionId, { bypassGovernance: true }),
		);
		await attempt("shorten lock", () =>
			destination.extendLock(version.key, version.versionId, { mode: "compliance", until: new Date(Date.now() + 5_000) }),
		);
		await attempt("compliance to governance", () =>
			destination.extendLock(version.key, version.versionId, {
				mode: "governance",
				until: new Date(Date.now() + 400 * 86_400_000),
			}),
		);
	}
	const keys = [...new Set(versions.map((v) => v.key))];
	for (const key of keys) {
		await attempt("overwrite with garbage", () => destination.put(key, Buffer.from(`encrypted by ransomware ${key}`)));
		await attempt("overwrite with locked garbage", () =>
			destination.put(key, Buffer.from("locked garbage"), { mode: "compliance", until: new Date(Date.now() + 86_400_000) }),
		);
		await attempt("delete marker", () => destination.deleteMarker(key));
	}
	return report;
}

describe.skipIf(!s3)("ransomware drill on the real S3 server", () => {
	it("with the backup's own keys the attacker destroys nothing: every snapshot in its window restores bit-exactly", async () => {
		proxy = await new B2StrictProxy(s3?.endpoint as string).start();
		const bucket = uniqueBucket("drill");
		harness = await createHarness({
			inMemory: true,
			plugins: PLUGINS,
			env: TEST_ENV(),
			sets: (dir) => ({
				main: setConfig(dir, {
					destination: { type: "b2", bucket, endpoint: proxy?.endpoint as string },
					retention: { days: 30, mode: "compliance" },
					schedule: { every: "1d" },
					packSizeMiB: 1,
				}),
			}),
			start: new Date().toISOString(),
		});
		const src = join(harness.dir, "src");
		await mkdir(join(src, "finance"), { recursive: true });
		await writeFile(join(src, "finance/ledger.xlsx"), pseudoRandom(1_500_000, 21));
		await writeFile(join(src, "readme.txt"), "quarterly numbers\n");
		await harness.engine.init();
		const expected = new Map<string, Awaited<ReturnType<typeof describeTree>>>();
		for (let run = 0; run < 3; run++) {
			await writeFile(join(src, `day-${run}.txt`), `notes of day ${run}\n`);
			if (run === 2) await writeFile(join(src, "finance/ledger.xlsx"), pseudoRandom(1_600_000, 22));
			const result = await harness.engine.backup();
			expected.set(result.snapshot?.id as string, await describeTree(src));
			harness.clock.advance(1000);
		}

		const open = await harness.engine.open();
		const report = await attack(open.repository.destination);
		// Every destructive call on a locked version was refused by the store itself.
		for (const what of ["delete version", "delete version bypassing governance", "shorten lock", "compliance to governance"]) {
			expect(report.refused[what], what).toBe(report.attempted[what]);
		}
		expect(report.attempted["delete version"]).toBeGreaterThan(10);
		process.stdout.write(`ransomware drill: ${JSON.stringify(report)}\n`);

		// A new machine: nothing but the bucket and the password.
		await harness.reopen({ freshCatalog: true });
		const snapshots = await harness.engine.snapshots();
		expect(snapshots.map((s) => s.id).sort()).toEqual([...expected.keys()].sort());
		for (const ref of snapshots) {
			const target = join(harness.dir, `restore-${ref.id.slice(0, 8)}`);
			await harness.engine.restore(ref.id, { target });
			expect(await describeTree(join(target, "src")), ref.id).toEqual(expected.get(ref.id));
		}
		const check = await harness.engine.check(undefined, { readDataPercent: 100 });
		// Forged versions on top change nothing: every pack still has a version that verifies.
		expect(check.errors).toEqual([]);
		expect(check.immutability.covered).toBe(3);
		expect(check.immutability.gaps).toEqual([]);
		expect(proxy.stats.rejected).toEqual([]);
	});
});
