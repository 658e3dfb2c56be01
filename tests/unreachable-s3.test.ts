import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { B2StrictProxy } from "../packages/plugin-b2/src/test-support/b2-strict-proxy.js";
import { s3, uniqueBucket } from "../packages/plugin-b2/src/test-support/s3-subject.js";
import { holdfastAsync as holdfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";
import { projectEngine } from "./support/project-session.js";

const proxies: B2StrictProxy[] = [];
afterAll(async () => {
	for (const proxy of proxies) await proxy.stop();
});

/** GETs of snapshot and index objects (not their listings, which go to the bucket's path). */
const METADATA_OBJECTS = /\/(snapshots|index)\/[0-9a-f]{64}$/;

describe.skipIf(!s3)("a B2 bucket answering 503 to reads of snapshot and index objects", () => {
	it("is ridden out when it recovers within the budget, and fails as unreachable when it does not", async () => {
		const proxy = await new B2StrictProxy(s3?.endpoint as string).start();
		proxies.push(proxy);
		const dir = await tempDir("holdfast-outage-");
		await mkdir(join(dir, "share"));
		await writeFile(
			join(dir, "holdfast.yaml"),
			`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-b2", "@holdfast/plugin-groom"]
sets:
  office:
    sources: [{ type: fs, path: ./share }]
    destination: { type: b2, endpoint: "${proxy.endpoint}", bucket: ${uniqueBucket("outage")}, keyIdEnv: TEST_KEY_ID, secretEnv: TEST_SECRET }
    retention: { days: 1, mode: compliance }
`,
		);
		const env = { TEST_KEY_ID: s3?.accessKeyId, TEST_SECRET: s3?.secretAccessKey, HOLDFAST_RETRY_BUDGET: "30s" };
		// The repository and its three snapshots are made in this process: the commands under test meet the outage.
		await projectEngine(dir, env)((engine) => engine.init());
		for (const content of ["first", "second", "third"]) {
			await writeFile(join(dir, "share/file.txt"), `${content}\n`);
			expect((await projectEngine(dir, env)((engine) => engine.backup())).snapshot).toBeDefined();
		}
		// Without its catalog a machine must read every snapshot and index object from the bucket.
		const forgetCatalog = () => rm(join(dir, ".holdfast"), { recursive: true, force: true });

		await forgetCatalog();
		proxy.outage("GET", METADATA_OBJECTS);
		let settled = false;
		const listing = holdfast(dir, ["snapshots", "--json"], env).finally(() => (settled = true));
		// The outage ends once it has turned reads away a few times, however long a busy machine took to get there.
		while (!settled && proxy.stats.faultsInjected < 3) await new Promise((resolve) => setTimeout(resolve, 20));
		proxy.recover();
		const listed = await listing;
		expect(listed.code, listed.stderr).toBe(0);
		expect(JSON.parse(listed.stdout)).toHaveLength(3);
		expect(proxy.stats.faultsInjected).toBeGreaterThan(0);

		proxy.recover();
		await forgetCatalog();
		proxy.outage("GET", METADATA_OBJECTS);
		const short = { ...env, HOLDFAST_RETRY_BUDGET: "2s" };
		// Each waits out its budget at its first read, side by side, from a folder with the same config and no catalog.
		const commands = [["snapshots"], ["check"], ["restore", "latest", "--target", "out"]].map(async (args, i) => {
			const reader = join(dir, `reader-${i}`);
			await mkdir(reader);
			await copyFile(join(dir, "holdfast.yaml"), join(reader, "holdfast.yaml"));
			const failed = await holdfast(reader, args, short);
			expect(failed.code, `${args.join(" ")}: ${failed.stdout}`).toBe(1);
			expect(failed.stderr).toMatch(/^holdfast: b2:outage-\S+ is unreachable: /);
			expect(failed.stderr).not.toMatch(/corrupt|verif|wrong password|no readable/i);
			expect(failed.stdout).toBe("");
		});
		await Promise.all(commands);
		expect(proxy.stats.rejected).toEqual([]);
	});
});
