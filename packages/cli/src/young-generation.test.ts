import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/** The module as `tsc -b` builds it: the cap is process-wide, so it is tried in a Node of its own. */
const BUILT = fileURLToPath(new URL("../dist/young-generation.js", import.meta.url));

/** The young generation's size, in MiB, after a workload that makes V8 grow it, capped at `capMiB` or not. */
function youngAfterWork(capMiB: number | undefined): number {
	const script = `
		const { getHeapSpaceStatistics } = await import("node:v8");
		const { Worker } = await import("node:worker_threads");
		const { capYoungGeneration } = await import(${JSON.stringify(BUILT)});
		${capMiB === undefined ? "" : `capYoungGeneration(${capMiB} * 1048576);`}
		const work = async () => {
			let kept = [];
			for (let i = 0; i < 5e5; i++) {
				kept.push({ i, name: "file " + i });
				if (kept.length > 200000) kept = [];
				if (i % 5000 === 0) await new Promise((resolve) => setImmediate(resolve));
			}
		};
		await work();
		// A worker started midway must not lift the cap.
		const worker = new Worker("1", { eval: true });
		await new Promise((resolve) => worker.on("exit", resolve));
		await work();
		const young = getHeapSpaceStatistics().find((space) => space.space_name === "new_space");
		console.log(young.space_size / 1048576);
	`;
	const result = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
	if (result.status !== 0) throw new Error(result.stderr);
	return Number(result.stdout.trim());
}

describe.skipIf(!existsSync(BUILT))("capYoungGeneration", () => {
	it("keeps the young generation within a step of the cap where V8 alone grows it past, a worker started midway or not", () => {
		expect(youngAfterWork(undefined)).toBeGreaterThan(16);
		// Collections may come faster than the observer hears of them: one doubling past the cap at most.
		expect(youngAfterWork(8)).toBeLessThanOrEqual(16);
	});
});
