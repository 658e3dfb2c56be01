import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { HOLDFAST_BIN, holdfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";

const COLLECTOR = pathToFileURL(join(HOLDFAST_BIN, "../../../core/dist/host/collector.js")).href;

function ended(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
	return new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
}

/** Loaded with --import: says on stderr when the process starts another Node. */
const SPAWN_WATCH = `import childProcess from "node:child_process";
import { syncBuiltinESMExports } from "node:module";
for (const name of ["spawn", "spawnSync", "execFile", "execFileSync", "fork"]) {
	const original = childProcess[name];
	childProcess[name] = function (file, ...rest) {
		if (name === "fork" || file === process.execPath) process.stderr.write("started a second Node\\n");
		return original.call(this, file, ...rest);
	};
}
syncBuiltinESMExports();
`;

describe("the Node a command runs in", () => {
	it("is the one the user started, for a restore and a check --read-data too", async () => {
		const dir = await tempDir("holdfast-one-node-");
		await writeFile(join(dir, "a.txt"), "kept in one process\n");
		await writeFile(
			join(dir, "holdfast.yaml"),
			`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-retention-planner"]
catalog: sqlite://./.holdfast/catalog.sqlite
sets:
  docs:
    sources: [{ type: fs, path: ./a.txt }]
    destination: { type: fs, path: ./repo }
    retention: { days: 30 }
`,
		);
		expect(holdfast(dir, ["init"]).code).toBe(0);
		expect(holdfast(dir, ["backup"]).code).toBe(0);
		const watch = join(dir, "spawn-watch.mjs");
		await writeFile(watch, SPAWN_WATCH);
		const run = (args: string[]) =>
			spawnSync(process.execPath, ["--import", pathToFileURL(watch).href, HOLDFAST_BIN, ...args], {
				cwd: dir,
				encoding: "utf8",
				env: { ...process.env, HOLDFAST_PASSWORD: "correct horse", HOLDFAST_SCRYPT_N: "1024" },
			});
		const restore = run(["restore", "latest", "--target", "out"]);
		const check = run(["check", "--read-data"]);
		expect([restore.status, check.status]).toEqual([0, 0]);
		expect(restore.stderr + check.stderr).not.toContain("started a second Node");
		const hit = spawnSync("find", [join(dir, "out"), "-name", "a.txt"], { encoding: "utf8" }).stdout.trim();
		expect(await readFile(hit, "utf8")).toBe("kept in one process\n");
		// The watch itself works: a command that does start Node is seen.
		const seen = spawnSync(
			process.execPath,
			["--import", pathToFileURL(watch).href, "-e", 'require("node:child_process").spawnSync(process.execPath, ["-e", "0"])'],
			{ encoding: "utf8" },
		);
		expect(seen.stderr).toContain("started a second Node");
	});

	it("frees a pack-sized buffer let go of when the command collects", async () => {
		const dir = await tempDir("holdfast-tuning-");
		const path = join(dir, "collect.mjs");
		await writeFile(
			path,
			`import { collectGarbage } from ${JSON.stringify(COLLECTOR)};
// What the process's buffers come to while one of 64 MiB is held; it is let go of on return.
const held = ((bytes) => {
	const buffer = new Uint8Array(bytes).fill(1);
	return process.memoryUsage().arrayBuffers + buffer[0] - 1;
})(64 * 1024 * 1024);
if (process.argv[2] === "collect") collectGarbage();
// V8 frees dead buffers on a helper thread once a collection has found them: give it two seconds.
const freed = () => held - process.memoryUsage().arrayBuffers;
for (let waited = 0; waited < 2000 && freed() < 60 * 1024 * 1024; waited += 20) await new Promise((r) => setTimeout(r, 20));
console.log(JSON.stringify({ freed: freed() }));
`,
		);
		const run = async (mode: string) => {
			const child = spawn(process.execPath, [path, mode], { stdio: ["ignore", "pipe", "inherit"] });
			let out = "";
			child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
			await ended(child);
			return JSON.parse(out) as { freed: number };
		};
		const left = await run("leave");
		const collected = await run("collect");
		// Left to V8, the buffer stands; collected, it is gone.
		expect(left.freed).toBeLessThan(1024 * 1024);
		expect(collected.freed).toBeGreaterThanOrEqual(60 * 1024 * 1024);
	});
});
