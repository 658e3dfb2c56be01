import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseConfigText } from "@holdfast/core";
import { describe, expect, it } from "vitest";
import { HOLDFAST_BIN, holdfast } from "./support/cli.js";
import { tempDir } from "./support/harness.js";

const FAST = { HOLDFAST_SCRYPT_N: "1024" };
const example = (name: string) => fileURLToPath(new URL(`../examples/${name}`, import.meta.url));

/** Runs the built binary, recording every module it (and its worker threads) loads. */
function withImports(dir: string, args: string[]): { code: number; stderr: string; imports: string[] } {
	const hooks = new URL("./support/record-imports.mjs", import.meta.url);
	const result = spawnSync(process.execPath, ["--import", hooks.href, HOLDFAST_BIN, ...args], {
		cwd: dir,
		encoding: "utf8",
		env: { ...process.env, ...FAST, HOLDFAST_PASSWORD: "correct horse" },
	});
	const lines = result.stderr.split("\n");
	return {
		code: result.status ?? -1,
		stderr: lines.filter((l) => !l.startsWith("import ") && !l.startsWith("require ")).join("\n"),
		imports: lines.filter((l) => l.startsWith("import ")).map((l) => l.slice("import ".length)),
	};
}

describe("the bundled CLI", () => {
	it("gives third-party plugins its own @holdfast/core, and seals on workers started from the bundle", async () => {
		const dir = await tempDir("holdfast-bundle-");
		await writeFile(join(dir, "a.txt"), "some text worth keeping\n");
		await writeFile(
			join(dir, "holdfast.yaml"),
			`plugins:
  - "@holdfast/plugin-fs-source"
  - "@holdfast/plugin-fs-destination"
  - { use: "${example("plugin-audit-log")}", options: { file: audit.jsonl } }
  - "${example("plugin-command-source")}"
catalog: sqlite://./.holdfast/catalog.sqlite
sets:
  docs:
    sources:
      - { type: fs, path: ./a.txt }
      - { type: command, command: [printf, "dump of the shop"], name: shop.sql }
    destination: { type: fs, path: ./repo }
    retention: { days: 30, mode: compliance }
`,
		);
		expect(holdfast(dir, ["init"], FAST).code).toBe(0);
		const backup = withImports(dir, ["backup"]);
		expect(backup.stderr).not.toMatch(/error|not an inversify ContainerModule/i);
		// zstd's native module resolves from the bundle's folder, as SQLite's does.
		expect(backup.stderr).not.toMatch(/zstd is not available/);
		expect(backup.code).toBe(0);

		// One core: every module of it comes from its bundle, none from tsc's per-file output or
		// from a second copy of inversify or tapable (the command source's ContainerModule passed
		// the host's instanceof check, and the audit log's taps ran on the host's hooks).
		const core = backup.imports.filter((url) => url.includes("/packages/core/"));
		expect(core.filter((url) => !url.includes("/packages/core/dist/bundle/"))).toEqual([]);
		expect(core.filter((url) => url.endsWith("/dist/bundle/index.js"))).toHaveLength(1);
		expect(backup.imports.filter((url) => /node_modules\/(inversify|@inversifyjs|tapable|reflect-metadata)\//.test(url))).toEqual(
			[],
		);
		expect(backup.imports).toContain(`file://${example("plugin-command-source")}/dist/index.js`);
		// The pool's workers were started from the bundle's own worker entry; a backup this small
		// never queues work, so it starts one (each costs ~70 ms of CPU to start).
		expect(core.filter((url) => url.endsWith("/dist/bundle/seal-worker.js"))).toHaveLength(1);

		// Listing snapshots seals and opens no blob, so it starts no worker.
		const listing = withImports(dir, ["snapshots"]);
		expect(listing.code).toBe(0);
		expect(listing.imports.filter((url) => url.endsWith("/seal-worker.js"))).toEqual([]);

		const audit = (await readFile(join(dir, "audit.jsonl"), "utf8"))
			.trim()
			.split("\n")
			.map((line) => JSON.parse(line) as { event: string; run?: string; ok?: boolean });
		expect(audit.filter((l) => l.event === "run").map((l) => [l.run, l.ok])).toEqual([["backup", true]]);

		// What the workers sealed opens again: both files restore byte for byte.
		expect(holdfast(dir, ["restore", "latest", "--target", "out"], FAST).code).toBe(0);
		const restored = await Promise.all(
			["a.txt", "shop.sql"].map(async (name) => {
				const hit = spawnSync("find", [join(dir, "out"), "-name", name], { encoding: "utf8" }).stdout.trim();
				return readFile(hit, "utf8");
			}),
		);
		expect(restored).toEqual(["some text worth keeping\n", "dump of the shop"]);

		// A backup whose work queues starts a worker per core.
		await writeFile(join(dir, "a.txt"), randomBytes(24 * 1024 * 1024));
		const larger = withImports(dir, ["backup"]);
		expect(larger.code).toBe(0);
		expect(larger.imports.filter((url) => url.endsWith("/dist/bundle/seal-worker.js"))).toHaveLength(
			Math.min(2, availableParallelism()),
		);
	});

	it("validates configs with the schemas compiled into it, as ajv compiling them at run time would", async () => {
		const dir = await tempDir("holdfast-bundle-schemas-");
		await mkdir(join(dir, "data"));
		// With a planner: config check would warn of none.
		const config = (
			set: string,
		) => `plugins: ["@holdfast/plugin-fs-source", "@holdfast/plugin-fs-destination", "@holdfast/plugin-retention-planner"]
sets:
  docs:
${set}`;
		const good = config(
			"    sources: [{ type: fs, path: ./data }]\n    destination: { type: fs, path: ./repo }\n    retention: { days: 30 }\n",
		);
		const bad = config(
			"    sources: [{ type: fs, path: ./data }]\n    destination: { type: fs }\n    retention: { days: 0, mode: forever }\n    compression: zip\n    colour: blue\n",
		);
		// Code generation from strings is what ajv compiles with: refused here, so nothing is compiled.
		const check = (text: string) => {
			const file = join(dir, "holdfast.yaml");
			return writeFile(file, text).then(() =>
				spawnSync(process.execPath, ["--disallow-code-generation-from-strings", HOLDFAST_BIN, "config", "check"], {
					cwd: dir,
					encoding: "utf8",
					// A password there is: config check would warn of none.
					env: { ...process.env, HOLDFAST_PASSWORD: "bundle test" },
				}),
			);
		};
		const accepted = await check(good);
		expect(accepted.stderr).toBe("");
		expect(accepted.status).toBe(0);

		const refused = await check(bad);
		expect(refused.status).toBe(2);
		let expected = "";
		try {
			parseConfigText(bad, join(dir, "holdfast.yaml"));
		} catch (error) {
			expected = (error as Error).message;
		}
		// The core's keys fail as the file is read; the plugins' options and unowned keys after, all in one go.
		const coreLines = expected.split("\n").map((line) => `holdfast: ${line}`);
		expect(coreLines.length).toBeGreaterThanOrEqual(3);
		const lines = refused.stderr.trim().split("\n");
		expect(lines.slice(0, coreLines.length)).toEqual(coreLines);
		expect(lines.slice(coreLines.length)).toEqual([
			`holdfast: ${join(dir, "holdfast.yaml")}:5: sets.docs.destination: must have required property 'path'`,
			`holdfast: ${join(dir, "holdfast.yaml")}:8: sets.docs.colour: unknown key (no plugin in "plugins" owns it)`,
		]);

		// A source's options are checked against its plugin's schema, compiled in as well.
		const badSource = await check(good.replace("path: ./data", "path: ./data, depth: 3"));
		expect(badSource.status).toBe(2);
		expect(badSource.stderr).toContain("sets.docs.sources.0.depth: unknown key");
	});

	it("speaks English whatever the locale", () => {
		const help = spawnSync(process.execPath, [HOLDFAST_BIN, "--help"], {
			encoding: "utf8",
			env: { ...process.env, LANG: "de_DE.UTF-8", LC_ALL: "de_DE.UTF-8" },
		});
		expect(help.status).toBe(0);
		expect(help.stdout).toContain("Commands:");
		expect(help.stdout).not.toContain("Kommandos:");
	});
});

describe("the bundled CLI's start", () => {
	it("measures text as string-width does, building its Intl.Segmenter only for text that is not printable ASCII", () => {
		const texts = [
			"",
			"holdfast <command> [options]",
			"~ tab\there",
			"\u001B[31mred\u001B[39m",
			"漢字",
			"naïve",
			"👩‍👩‍👧",
			"e\u0301",
		];
		const script = fileURLToPath(new URL("./support/string-width-check.mjs", import.meta.url));
		const run = spawnSync(process.execPath, [script, JSON.stringify(texts)], { encoding: "utf8" });
		expect(run.stderr).toBe("");
		const result = JSON.parse(run.stdout) as { loaded: number; lazy: number[]; segmentersAfter: number[]; real: number[] };
		expect(result.lazy).toEqual(result.real);
		// Loading builds none, nor does printable ASCII; the tab and the colour codes load the real measure.
		expect(result.loaded).toBe(0);
		expect(result.segmentersAfter.slice(0, 2)).toEqual([0, 0]);
		expect(result.segmentersAfter[2]).toBeGreaterThan(0);
	});

	it("lays out --help without building an Intl.Segmenter or loading node:assert", () => {
		const counting = `data:text/javascript,${encodeURIComponent(
			"const S = Intl.Segmenter; let n = 0; Intl.Segmenter = class extends S { constructor(...a) { super(...a); n++; } }; process.on('exit', () => process._rawDebug('segmenters ' + n));",
		)}`;
		const help = spawnSync(process.execPath, ["--import", counting, HOLDFAST_BIN, "--help"], { encoding: "utf8" });
		expect(help.status).toBe(0);
		expect(help.stdout).toMatch(/^ {2}holdfast snapshots \[set\] +list snapshots$/m);
		expect(help.stderr.trim()).toBe("segmenters 0");
		// yargs' assertions are made without it, imported or required.
		const hooks = new URL("./support/record-imports.mjs", import.meta.url);
		const recorded = spawnSync(process.execPath, ["--import", hooks.href, HOLDFAST_BIN, "--help"], { encoding: "utf8" });
		expect(recorded.status).toBe(0);
		expect(recorded.stderr).toContain("import node:fs\n");
		expect(recorded.stderr).not.toMatch(/^(import|require) (node:)?assert$/m);
	});
});
