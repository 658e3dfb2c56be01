// Bundles what `tsc -b` built into a few files per package, so a command starts without
// resolving and reading hundreds of modules. Run by `npm run build` after tsc; with
// --if-stale (the test setup) it bundles only when tsc's output is newer than the bundle.
//
// @holdfast/core is one bundle that the CLI, the bundled plugins and third-party plugins
// all import by its package name, so every one of them shares one instance of it (its
// classes, hooks and inversify). The CLI's bundle keeps every @holdfast/* package external.
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const STAMP = "bundle/.bundled";

/** Each bundle sits two levels under its package (dist/bundle), as tsc's files under dist/host do. */
const BUNDLES = [
	{
		pkg: "packages/core",
		entries: {
			index: "dist/index.js",
			testing: "dist/testing/index.js",
			units: "dist/host/units.js",
			// blob-pool.ts starts its workers from ./seal-worker.js beside itself.
			"seal-worker": "dist/repository/seal-worker.js",
		},
		// Native, or the test runner plugin authors bring themselves.
		external: ["better-sqlite3", "vitest"],
	},
	{
		pkg: "packages/cli",
		entries: { main: "dist/main.js" },
		external: ["@holdfast/*"],
	},
];

// CommonJS dependencies (ajv, yaml, semver, tapable) call require() for Node's built-ins.
const BANNER =
	'import { createRequire as __holdfastRequire } from "node:module";\nconst require = __holdfastRequire(import.meta.url);';

/** Newest modification time of the .js files tsc wrote under `dir` (the bundle itself aside). */
function newestInput(dir) {
	let newest = 0;
	for (const entry of readdirSync(dir, { withFileTypes: true })) {
		const path = join(dir, entry.name);
		if (entry.isDirectory()) {
			if (entry.name !== "bundle") newest = Math.max(newest, newestInput(path));
		} else if (entry.name.endsWith(".js")) {
			newest = Math.max(newest, statSync(path).mtimeMs);
		}
	}
	return newest;
}

/** Whether tsc built this package since it was last bundled (nothing to bundle before tsc ran). */
function isStale(bundle) {
	const dist = join(ROOT, bundle.pkg, "dist");
	if (!Object.values(bundle.entries).every((file) => existsSync(join(ROOT, bundle.pkg, file)))) return false;
	const stamp = join(dist, STAMP);
	return !existsSync(stamp) || statSync(stamp).mtimeMs < newestInput(dist);
}

export async function bundle({ ifStale = false } = {}) {
	for (const spec of BUNDLES) {
		if (ifStale && !isStale(spec)) continue;
		const dir = join(ROOT, spec.pkg);
		await build({
			absWorkingDir: dir,
			entryPoints: Object.fromEntries(Object.entries(spec.entries).map(([name, file]) => [name, join(dir, file)])),
			outdir: join(dir, "dist/bundle"),
			bundle: true,
			splitting: true,
			format: "esm",
			platform: "node",
			target: "node20",
			external: spec.external,
			banner: { js: BANNER },
			chunkNames: "chunk-[hash]",
			sourcemap: true,
			legalComments: "none",
			logLevel: "warning",
		});
		writeFileSync(join(dir, "dist", STAMP), `${new Date().toISOString()}\n`);
	}
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
	await bundle({ ifStale: process.argv.includes("--if-stale") });
}
