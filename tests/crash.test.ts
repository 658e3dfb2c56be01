import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { holdfast, startHoldfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";
import { describeTree, pseudoRandom } from "./support/trees.js";

let dir: string;
beforeAll(async () => {
	dir = await tempDir("holdfast-crash-");
	for (let i = 0; i < 48; i++) {
		await mkdir(join(dir, `data/d${i % 6}`), { recursive: true });
		await writeFile(join(dir, `data/d${i % 6}/big-${i}.bin`), pseudoRandom(1_000_000 + i * 10_000, 100 + i));
		await writeFile(join(dir, `data/d${i % 6}/small-${i}.txt`), `small file ${i}\n`.repeat(i + 1));
	}
	await writeFile(
		join(dir, "holdfast.yaml"),
		`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-retention-planner"]
sets:
  crash:
    sources: [{ type: fs, path: ./data }]
    destination: { type: fs, path: ./repo }
    retention: { days: 30 }
    packSizeMiB: 1
`,
	);
	expect(holdfast(dir, ["init"]).code).toBe(0);
});

function killAfter(ms: number): Promise<void> {
	return new Promise((resolve) => {
		const child = startHoldfast(dir, ["backup", "--no-progress"]);
		const timer = setTimeout(() => child.kill("SIGKILL"), ms);
		child.on("exit", () => {
			clearTimeout(timer);
			resolve();
		});
	});
}

describe("a backup killed with SIGKILL at random points", () => {
	it("never leaves a listed snapshot that does not restore, and the next backup completes", async () => {
		const expected = await describeTree(join(dir, "data"));
		// Spread over start-up, scanning, packing and index writing; a seeded sequence, so reruns match.
		for (const ms of [350, 600, 900, 1300, 1800, 2600]) {
			await killAfter(ms);
			const check = holdfast(dir, ["check", "--read-data", "--json"]);
			expect(check.code, `check after a kill at ${ms} ms: ${check.stderr}`).toBe(0);
			const snapshots = JSON.parse(holdfast(dir, ["snapshots", "--json"]).stdout) as { id: string }[];
			for (const snapshot of snapshots) {
				const target = join(dir, `restore-${ms}-${snapshot.id.slice(0, 8)}`);
				expect(holdfast(dir, ["restore", snapshot.id, "--target", target]).code).toBe(0);
				expect(await describeTree(join(target, "data"))).toEqual(expected);
			}
		}
		const final = holdfast(dir, ["backup", "--json"]);
		expect(final.code, final.stderr).toBe(0);
		const target = join(dir, "restore-final");
		expect(holdfast(dir, ["restore", "latest", "--target", target]).code).toBe(0);
		expect(await describeTree(join(target, "data"))).toEqual(expected);
	});
});
