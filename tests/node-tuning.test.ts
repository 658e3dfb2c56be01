import { type ChildProcess, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { HOLDFAST_BIN, holdfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";

const TUNING = pathToFileURL(join(HOLDFAST_BIN, "../../dist/node-tuning.js")).href;
const COLLECTOR = pathToFileURL(join(HOLDFAST_BIN, "../../../core/dist/host/collector.js")).href;
const WORKER_LIMITS = pathToFileURL(join(HOLDFAST_BIN, "../../../core/dist/host/worker-limits.js")).href;

/** A first Node that hands `child` to a second one, as the CLI does for a restore, and ends as it ended. */
async function driver(dir: string, child: string): Promise<string> {
	const childPath = join(dir, "child.mjs");
	await writeFile(childPath, child);
	const path = join(dir, "driver.mjs");
	await writeFile(
		path,
		`import { endAs, relaunch } from ${JSON.stringify(TUNING)};
const ended = await relaunch(${JSON.stringify(childPath)}, process.argv.slice(2));
endAs(ended);
`,
	);
	return path;
}

function ended(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
	return new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
}

function isRunning(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
}

describe("the second Node a restore runs in", () => {
	it("gets glibc's settings and V8's flag, and its exit code comes back", async () => {
		const dir = await tempDir("holdfast-tuning-");
		const path = await driver(
			dir,
			`console.log(JSON.stringify({ arena: process.env.MALLOC_ARENA_MAX, flags: process.execArgv, argv: process.argv.slice(2) }));
process.exitCode = 7;`,
		);
		const child = spawn(process.execPath, [path, "a", "b c"], { stdio: ["ignore", "pipe", "inherit"] });
		let out = "";
		child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
		expect(await ended(child)).toEqual({ code: 7, signal: null });
		expect(JSON.parse(out)).toEqual({
			arena: "1",
			flags: ["--single-threaded-gc"],
			argv: ["a", "b c"],
		});
	});

	it("lets its main thread's young generation grow past a worker's, which its own limit holds", async () => {
		const dir = await tempDir("holdfast-tuning-");
		// Garbage that lives a little while, as a restore's plan does: V8 grows the young generation for it.
		const churn = `let keep = []; for (let i = 0; i < 400000; i++) { keep.push({ i, s: "x" + i }); if (keep.length > 50000) keep = []; }`;
		const young = `getHeapSpaceStatistics().find((space) => space.space_name === "new_space").space_size`;
		const path = await driver(
			dir,
			`import { getHeapSpaceStatistics } from "node:v8";
import { Worker } from "node:worker_threads";
import { WORKER_RESOURCE_LIMITS } from ${JSON.stringify(WORKER_LIMITS)};
${churn}
const main = ${young};
const worker = new Worker(\`const { getHeapSpaceStatistics } = require("node:v8");
${churn}
require("node:worker_threads").parentPort.postMessage(${young});\`, { eval: true, resourceLimits: WORKER_RESOURCE_LIMITS });
worker.once("message", (inWorker) => {
	console.log(JSON.stringify({ main, worker: inWorker }));
	void worker.terminate();
});
`,
		);
		const child = spawn(process.execPath, [path], { stdio: ["ignore", "pipe", "inherit"] });
		let out = "";
		child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
		expect(await ended(child)).toEqual({ code: 0, signal: null });
		const { main, worker } = JSON.parse(out) as { main: number; worker: number };
		// A semi-space flag among the second Node's would hold both to one size, the worker's limit overridden.
		expect(worker).toBeLessThanOrEqual(2 * 1024 * 1024);
		expect(main).toBeGreaterThanOrEqual(4 * worker);
	});

	it("is not used when Node refuses one of its flags: the first runs the command itself", async () => {
		const dir = await tempDir("holdfast-tuning-");
		await writeFile(join(dir, "child.mjs"), `console.log("second");`);
		const path = join(dir, "driver.mjs");
		await writeFile(
			path,
			`import { relaunch } from ${JSON.stringify(TUNING)};
const child = ${JSON.stringify(join(dir, "child.mjs"))};
const refused = await relaunch(child, [], {}, ["--no-such-v8-flag-of-holdfast"]);
const accepted = await relaunch(child, [], {}, ["--max-semi-space-size=1"]);
console.log(JSON.stringify({ refused: refused ?? null, accepted }));
`,
		);
		const child = spawn(process.execPath, [path], { stdio: ["ignore", "pipe", "pipe"] });
		let out = "";
		child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
		expect(await ended(child)).toEqual({ code: 0, signal: null });
		const lines = out.trim().split("\n");
		expect(lines).toEqual(["second", JSON.stringify({ refused: null, accepted: { code: 0, signal: null } })]);
	});

	it("is stopped by a SIGINT sent to the first, and the first ends by the same signal", async () => {
		const dir = await tempDir("holdfast-tuning-");
		const path = await driver(dir, `console.log(process.pid);\nsetInterval(() => undefined, 1000);`);
		const child = spawn(process.execPath, [path], { stdio: ["ignore", "pipe", "inherit"] });
		const pid = await new Promise<number>((resolve) => child.stdout?.once("data", (d: Buffer) => resolve(Number(d.toString()))));
		expect(isRunning(pid)).toBe(true);
		child.kill("SIGINT");
		expect(await ended(child)).toEqual({ code: null, signal: "SIGINT" });
		expect(isRunning(pid)).toBe(false);
	});

	it("ends when the first is killed outright, which cannot pass the signal on", async () => {
		const dir = await tempDir("holdfast-tuning-");
		const path = await driver(
			dir,
			`import { endWithParent } from ${JSON.stringify(TUNING)};
endWithParent(process.ppid, 50);
console.log(process.pid);
setInterval(() => undefined, 1000);`,
		);
		const child = spawn(process.execPath, [path], { stdio: ["ignore", "pipe", "inherit"] });
		const pid = await new Promise<number>((resolve) => child.stdout?.once("data", (d: Buffer) => resolve(Number(d.toString()))));
		child.kill("SIGKILL");
		await ended(child);
		await expect.poll(() => isRunning(pid), { timeout: 10_000, interval: 50 }).toBe(false);
	});

	it("gives a restore's exit code and message as the command run in one Node does", async () => {
		const dir = await tempDir("holdfast-tuning-");
		const args = ["restore", "latest", "--target", join(dir, "out"), "--config", join(dir, "missing.yaml")];
		const direct = holdfast(dir, args, { HOLDFAST_MEMORY_TUNED: "1" });
		const relaunched = holdfast(dir, args);
		expect(direct.code).not.toBe(0);
		expect(relaunched).toEqual(direct);
	});

	it("frees a pack-sized buffer let go of when the command collects, with the flags it runs under", async () => {
		const dir = await tempDir("holdfast-tuning-");
		const path = join(dir, "collect.mjs");
		await writeFile(
			path,
			`import { NODE_FLAGS } from ${JSON.stringify(TUNING)};
import { collectGarbage } from ${JSON.stringify(COLLECTOR)};
// What the process's buffers come to while one of 64 MiB is held; it is let go of on return.
const held = ((bytes) => {
	const buffer = new Uint8Array(bytes).fill(1);
	return process.memoryUsage().arrayBuffers + buffer[0] - 1;
})(64 * 1024 * 1024);
if (process.argv[2] === "collect") collectGarbage();
console.log(JSON.stringify({ freed: held - process.memoryUsage().arrayBuffers, flags: process.execArgv.join(" ") === NODE_FLAGS.join(" ") }));
`,
		);
		const { NODE_FLAGS } = (await import(TUNING)) as { NODE_FLAGS: string[] };
		const run = async (mode: string) => {
			const child = spawn(process.execPath, [...NODE_FLAGS, path, mode], { stdio: ["ignore", "pipe", "inherit"] });
			let out = "";
			child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
			await ended(child);
			return JSON.parse(out) as { freed: number; flags: boolean };
		};
		const left = await run("leave");
		const collected = await run("collect");
		expect(left.flags && collected.flags).toBe(true);
		// Left to V8, the buffer stands; collected, it is gone at once.
		expect(left.freed).toBeLessThan(1024 * 1024);
		expect(collected.freed).toBeGreaterThanOrEqual(60 * 1024 * 1024);
	});
});
