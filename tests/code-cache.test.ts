import { spawnSync } from "node:child_process";
import { chmod, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { codeCacheFolder } from "../packages/core/src/host/code-cache.js";
import { HOLDFAST_BIN, holdfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";

// The code cache runs in a process of its own for each test: V8 keeps nothing of a run but
// what the cache folder holds, and the cache is written as the process exits.
const RUNNER = fileURLToPath(new URL("../packages/core/dist/host/code-cache.js", import.meta.url));

interface Run {
	cache: string;
	sum: number;
}

/** Runs `file` through runCompiled in a new Node, with V8 `flags` set first; what it exported and did with the cache. */
function runIn(file: string, build: string, folder: string, flags = "", limitFileSize = false): Run {
	const script = `
		import { setFlagsFromString } from "node:v8";
		if (${JSON.stringify(flags)}) setFlagsFromString(${JSON.stringify(flags)});
		const { runCompiled } = await import(${JSON.stringify(RUNNER)});
		const { exports, cache } = runCompiled(${JSON.stringify(file)}, ${JSON.stringify(build)}, ${JSON.stringify(folder)});
		console.log(JSON.stringify({ cache, sum: exports.sum(2, 3) }));
	`;
	const node = [process.execPath, "--input-type=module", "-e", script];
	// A file size limit of 0 blocks: every write fails (EFBIG), as on a full disk.
	const run = limitFileSize
		? spawnSync("bash", ["-c", 'ulimit -f 0; exec "$@"', "bash", ...node], { encoding: "utf8" })
		: spawnSync(node[0] as string, node.slice(1), { encoding: "utf8" });
	if (run.status !== 0) throw new Error(run.stderr);
	return JSON.parse(run.stdout) as Run;
}

async function library(dir: string, body = "return a + b;"): Promise<string> {
	const file = join(dir, "lib.cjs");
	await writeFile(file, `exports.sum = function sum(a, b) { ${body} };\nexports.where = __filename;\n`);
	return file;
}

describe("codeCacheFolder", () => {
	it("is under the user's cache folder, and none with HOLDFAST_CODE_CACHE=off", () => {
		expect(codeCacheFolder({ XDG_CACHE_HOME: "/var/cache/u" })).toBe("/var/cache/u/holdfast/compiled");
		// A relative XDG_CACHE_HOME is ignored, as the XDG spec says.
		expect(codeCacheFolder({ XDG_CACHE_HOME: "cache" })).toMatch(/\/\.cache\/holdfast\/compiled$/);
		expect(codeCacheFolder({ XDG_CACHE_HOME: "/var/cache/u", HOLDFAST_CODE_CACHE: "off" })).toBeUndefined();
	});
});

describe("runCompiled", () => {
	it("keeps V8's code for a file between runs, and V8 takes it", async () => {
		const dir = await tempDir("holdfast-code-cache-");
		const folder = join(dir, "cache");
		const file = await library(dir);
		expect(runIn(file, "b1", folder)).toEqual({ cache: "missing", sum: 5 });
		const written = await readdir(folder);
		expect(written).toHaveLength(1);
		// Private, as the unlock hints kept beside it.
		expect((await stat(folder)).mode & 0o777).toBe(0o700);
		expect(written[0]).toMatch(/^lib-b1-[0-9a-z]+\.[0-9a-z]+-[0-9a-z]+\.v8$/);
		const before = await stat(join(folder, written[0] as string));
		expect(runIn(file, "b1", folder)).toEqual({ cache: "used", sum: 5 });
		// Taken, so not written again.
		expect((await stat(join(folder, written[0] as string))).mtimeMs).toBe(before.mtimeMs);
	});

	it("never offers the code of another build: a changed file compiles anew, as its new self", async () => {
		const dir = await tempDir("holdfast-code-cache-");
		const folder = join(dir, "cache");
		const file = await library(dir);
		expect(runIn(file, "b1", folder).cache).toBe("missing");
		// The same length and build name: only the file's time tells them apart.
		await library(dir, "return a * b;");
		const later = new Date(Date.now() + 5_000);
		await utimes(file, later, later);
		expect(runIn(file, "b1", folder)).toEqual({ cache: "missing", sum: 6 });
		expect(runIn(file, "b1", folder)).toEqual({ cache: "used", sum: 6 });
		// The other build's code, recent, stays: two installations used in turn keep theirs.
		expect(await readdir(folder)).toHaveLength(2);
	});

	it("removes code of other builds written over a week ago", async () => {
		const dir = await tempDir("holdfast-code-cache-");
		const folder = join(dir, "cache");
		const file = await library(dir);
		runIn(file, "old", folder);
		const [old] = await readdir(folder);
		const weekAgo = new Date(Date.now() - 8 * 86_400_000);
		await utimes(join(folder, old as string), weekAgo, weekAgo);
		expect(runIn(file, "new", folder).cache).toBe("missing");
		const left = await readdir(folder);
		expect(left).toHaveLength(1);
		expect(left[0]).toMatch(/^lib-new-/);
	});

	it("keeps code for each set of V8 flags apart, so commands that set flags do not undo each other's", async () => {
		const dir = await tempDir("holdfast-code-cache-");
		const folder = join(dir, "cache");
		const file = await library(dir);
		expect(runIn(file, "b1", folder).cache).toBe("missing");
		expect(runIn(file, "b1", folder, "--heap-growing-percent=20").cache).toBe("missing");
		expect(runIn(file, "b1", folder).cache).toBe("used");
		expect(runIn(file, "b1", folder, "--heap-growing-percent=20").cache).toBe("used");
		expect(await readdir(folder)).toHaveLength(2);
	});

	it("runs a file whose cached code is damaged from its source, and replaces the code", async () => {
		const dir = await tempDir("holdfast-code-cache-");
		const folder = join(dir, "cache");
		const file = await library(dir);
		runIn(file, "b1", folder);
		const [name] = await readdir(folder);
		const path = join(folder, name as string);
		const bytes = await readFile(path);
		bytes.fill(0x5a, 64);
		await writeFile(path, bytes);
		expect(runIn(file, "b1", folder)).toEqual({ cache: "rejected", sum: 5 });
		expect(runIn(file, "b1", folder)).toEqual({ cache: "used", sum: 5 });
	});

	it("neither reads nor writes code in a folder, or from a file, that others may write", async () => {
		const dir = await tempDir("holdfast-code-cache-");
		const folder = join(dir, "cache");
		const file = await library(dir);
		runIn(file, "b1", folder);
		const [name] = await readdir(folder);
		const cacheFile = join(folder, name as string);
		// A file others may write: not taken, and replaced by one of this user's own.
		await chmod(cacheFile, 0o666);
		expect(runIn(file, "b1", folder)).toEqual({ cache: "missing", sum: 5 });
		expect((await stat(cacheFile)).mode & 0o777).toBe(0o600);
		expect(runIn(file, "b1", folder).cache).toBe("used");
		// A folder others may write: left alone.
		await chmod(folder, 0o777);
		expect(runIn(file, "b1", folder)).toEqual({ cache: "off", sum: 5 });
		await rm(cacheFile);
		expect(runIn(file, "b1", folder)).toEqual({ cache: "off", sum: 5 });
		expect(await readdir(folder)).toEqual([]);
	});

	it("leaves nothing behind when the code cannot be written", async () => {
		const dir = await tempDir("holdfast-code-cache-");
		const folder = join(dir, "cache");
		const file = await library(dir);
		expect(runIn(file, "b1", folder, "", true)).toEqual({ cache: "missing", sum: 5 });
		expect(runIn(file, "b1", folder, "", true)).toEqual({ cache: "missing", sum: 5 });
		expect(await readdir(folder)).toEqual([]);
	});

	it("runs as without a cache where the cache folder cannot be made", async () => {
		const dir = await tempDir("holdfast-code-cache-");
		const file = await library(dir);
		// A file where the folder would be.
		const blocked = join(dir, "blocked");
		await writeFile(blocked, "");
		expect(runIn(file, "b1", join(blocked, "cache"))).toEqual({ cache: "missing", sum: 5 });
		expect(runIn(file, "b1", join(blocked, "cache"))).toEqual({ cache: "missing", sum: 5 });
	});
});

describe("the bundled CLI's libraries", () => {
	it("run from V8's cached code after the first command", async () => {
		const dir = await tempDir("holdfast-code-cache-cli-");
		await writeFile(join(dir, "a.txt"), "text\n");
		await writeFile(
			join(dir, "holdfast.yaml"),
			`plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination"]
sets:
  docs:
    sources: [{ type: fs, path: ./a.txt }]
    destination: { type: fs, path: ./repo }
    retention: { days: 30 }
`,
		);
		const env = { XDG_CACHE_HOME: join(dir, "cache") };
		const folder = join(dir, "cache", "holdfast", "compiled");
		expect(holdfast(dir, ["init"], env).code).toBe(0);
		const files = (await readdir(folder)).sort();
		// yargs and the rest of the CLI's libraries; the core's (yaml, inversify, semver, tapable, keyv).
		expect(files.map((f) => f.replace(/-.*/, ""))).toEqual(["cli", "core"]);
		const times = await Promise.all(files.map(async (f) => (await stat(join(folder, f))).mtimeMs));
		const listing = holdfast(dir, ["snapshots"], env);
		expect(listing.code).toBe(0);
		expect(listing.stdout).toContain("no snapshots yet");
		// Both taken as they were: code V8 rejected would have been written again.
		expect((await readdir(folder)).sort()).toEqual(files);
		expect(await Promise.all(files.map(async (f) => (await stat(join(folder, f))).mtimeMs))).toEqual(times);

		// A cache folder under /proc cannot be made: Node's recursive mkdir looped there for ever.
		const proc = spawnSync(process.execPath, [HOLDFAST_BIN, "snapshots"], {
			cwd: dir,
			encoding: "utf8",
			timeout: 60_000,
			env: { ...process.env, HOLDFAST_PASSWORD: "correct horse", XDG_CACHE_HOME: "/proc/self" },
		});
		expect(proc.signal).toBeNull();
		expect(proc.status).toBe(0);
		expect(proc.stdout).toContain("no snapshots yet");
	});
});

describe("a daemon's commands", () => {
	// The core's bundle copied beside itself (its packages resolve from there), then its chunks
	// removed, as an upgrade of holdfast under a running daemon removes them.
	const CORE_DIST = fileURLToPath(new URL("../packages/core/dist/", import.meta.url));

	function underUpgrade(loadFirst: boolean): { status: number | null; stdout: string; stderr: string } {
		const copy = `bundle-upgrade-${process.pid}-${loadFirst ? "loaded" : "cold"}`;
		const script = `
			import { cpSync, readdirSync, rmSync } from "node:fs";
			const dist = ${JSON.stringify(CORE_DIST)};
			cpSync(dist + "bundle", dist + ${JSON.stringify(copy)}, { recursive: true });
			try {
				const { Engine } = await import(dist + ${JSON.stringify(`${copy}/index.js`)});
				if (${loadFirst}) await Engine.prototype.loadCommands.call(undefined);
				for (const file of readdirSync(dist + ${JSON.stringify(copy)})) if (file.startsWith("chunk-")) rmSync(dist + ${JSON.stringify(copy)} + "/" + file);
				await Engine.prototype.loadCommands.call(undefined);
				console.log("ran");
			} finally {
				rmSync(dist + ${JSON.stringify(copy)}, { recursive: true, force: true });
			}
		`;
		const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
			encoding: "utf8",
			env: { ...process.env, HOLDFAST_CODE_CACHE: "off" },
		});
		return { status: run.status, stdout: run.stdout, stderr: run.stderr };
	}

	it("are all in memory once loaded, whatever an upgrade then removes", () => {
		expect(underUpgrade(true)).toMatchObject({ status: 0, stdout: "ran\n" });
		// Without loading them first, the commands' code is gone with the upgrade.
		const cold = underUpgrade(false);
		expect(cold.status).not.toBe(0);
		expect(cold.stderr).toMatch(/Cannot find module .*chunk-/);
	});
});
