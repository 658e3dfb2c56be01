// Bundles what `tsc -b` built into a few files per package, so a command starts without
// resolving and reading hundreds of modules. Run by `npm run build` after tsc; with
// --if-stale (the test setup) it bundles only when tsc's output is newer than the bundle.
//
// @holdfast/core is one bundle that the CLI, the bundled plugins and third-party plugins
// all import by its package name, so every one of them shares one instance of it (its
// classes, hooks and inversify). The CLI's bundle keeps every @holdfast/* package external.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
/** Written in each bundle's folder when it is made: what --if-stale compares tsc's output with. */
const STAMP = ".bundled";
/** The bundles' folders under a package's dist, which are not tsc's output. */
const BUNDLE_DIRS = new Set(["bundle", "launcher"]);
/** The plugins the CLI installs with itself, whose schemas are compiled ahead of time. */
const PLUGIN_DIRS = Object.keys(JSON.parse(readFileSync(join(ROOT, "packages/cli/package.json"), "utf8")).dependencies)
	.filter((name) => name.startsWith("@holdfast/plugin-"))
	.map((name) => `packages/${name.slice("@holdfast/".length)}`);

/** Each bundle sits two levels under its package (dist/bundle), as tsc's files under dist/host do. */
const BUNDLES = [
	{
		pkg: "packages/core",
		entries: {
			index: "dist/index.js",
			testing: "dist/testing/index.js",
			units: "dist/host/units.js",
			// The CLI's launcher starts scrypt with it before it loads anything else.
			"key-derivation": "dist/repository/key-derivation.js",
			// The CLI runs its own vendor file with it, without loading the rest of the core.
			"code-cache": "dist/host/code-cache.js",
			// The CLI's unlock hints make their folder with it, in the launcher too.
			folders: "dist/host/folders.js",
			// blob-pool.ts starts its workers from ./seal-worker.js beside itself.
			"seal-worker": "dist/repository/seal-worker.js",
			// index-decoder.ts starts its threads from ./index-worker.js beside itself.
			"index-worker": "dist/repository/index-worker.js",
		},
		// Native (SQLite, zstd), or the test runner plugin authors bring themselves.
		external: ["better-sqlite3", "vitest", "zstd-napi"],
		// The bundled plugins' schemas are compiled into it: a change to them rebundles it.
		inputs: PLUGIN_DIRS,
		precompile: true,
		// Third-party libraries, run from one CommonJS file with V8's code cache (host/code-cache.ts
		// says why); reflect-metadata only for what it does as it loads.
		vendor: {
			packages: ["inversify", "tapable", "semver", "keyv", "yaml"],
			sideEffects: ["reflect-metadata"],
			runner: "dist/host/code-cache.js",
		},
	},
	{
		pkg: "packages/cli",
		entries: { main: "dist/main.js" },
		external: ["@holdfast/*"],
		// yargs and what it loads: 240 KB parsed at every start, `--help` included.
		vendor: { packages: ["yargs"], sideEffects: [], runner: "@holdfast/core/code-cache" },
	},
	{
		// The launcher's first module, with the key derivation it starts inlined (src/launch.ts).
		pkg: "packages/cli",
		entries: { launch: "dist/launch.js" },
		outdir: "dist/launcher",
		splitting: false,
		inputs: ["packages/core"],
		alias: {
			"@holdfast/core/key-derivation": "../core/dist/repository/key-derivation.js",
			"@holdfast/core/folders": "../core/dist/host/folders.js",
		},
	},
	// The other plugins the CLI installs, each bundled with its dependencies (ignore, p-limit): a
	// command that loads them resolves and reads no module of theirs one by one.
	...["plugin-fs-destination", "plugin-retention-planner", "plugin-groom"].map((name) => ({
		pkg: `packages/${name}`,
		entries: { index: "dist/index.js" },
		external: ["@holdfast/*"],
	})),
	{
		pkg: "packages/plugin-fs-source",
		// folder-lister.ts starts its thread from ./list-worker.js beside itself.
		entries: { index: "dist/index.js", "list-worker": "dist/list-worker.js" },
		external: ["@holdfast/*"],
	},
	{
		// The S3 destination with the AWS SDK: its ES modules, of which the bundle keeps only what
		// sdk-modules.ts names, in a file of its own that loads when a command first talks to S3.
		// From node_modules, the SDK's CommonJS files cost 100 to 120 ms of CPU to load; this,
		// about 40.
		pkg: "packages/plugin-b2",
		entries: { index: "dist/index.js", "sdk-modules": "dist/sdk-modules.js" },
		external: ["@holdfast/*"],
		mainFields: ["module", "main"],
	},
];

// CommonJS dependencies (yaml, semver, tapable, ajv's runtime) call require() for Node's built-ins.
const BANNER =
	'import { createRequire as __holdfastRequire } from "node:module";\nconst require = __holdfastRequire(import.meta.url);';

/** Newest modification time of the .js files tsc wrote under `dir` (the bundle itself aside). */
function newestInput(dir) {
	let newest = 0;
	for (const entry of readdirSync(dir, { withFileTypes: true })) {
		const path = join(dir, entry.name);
		if (entry.isDirectory()) {
			if (!BUNDLE_DIRS.has(entry.name)) newest = Math.max(newest, newestInput(path));
		} else if (entry.name.endsWith(".js")) {
			newest = Math.max(newest, statSync(path).mtimeMs);
		}
	}
	return newest;
}

/**
 * Whether tsc rebuilt the package or its inputs, this script changed, or the installed
 * packages did (package-lock.json: every bundle holds some of node_modules), since the last
 * bundling.
 */
function isStale(bundle) {
	const dist = join(ROOT, bundle.pkg, "dist");
	if (!Object.values(bundle.entries).every((file) => existsSync(join(ROOT, bundle.pkg, file)))) return false;
	const stamp = join(ROOT, bundle.pkg, bundle.outdir ?? "dist/bundle", STAMP);
	if (!existsSync(stamp)) return true;
	const inputs = [dist, ...(bundle.inputs ?? []).map((pkg) => join(ROOT, pkg, "dist"))].filter((d) => existsSync(d));
	const newest = Math.max(
		statSync(fileURLToPath(import.meta.url)).mtimeMs,
		statSync(join(ROOT, "package-lock.json")).mtimeMs,
		...inputs.map(newestInput),
	);
	return statSync(stamp).mtimeMs < newest;
}

/**
 * Compiles, with ajv's standalone code, every schema a command with the bundled plugins
 * validates against: the config file's and each plugin's options and source or destination
 * types. Written as a module keyed by each schema's JSON, which replaces the empty map of
 * precompiled-validators.js in the bundle; any other schema is still compiled when used.
 */
async function precompileSchemas(dir) {
	// A bundle loaded only to collect schemas: its libraries' compiled code is worth keeping nowhere.
	process.env.HOLDFAST_CODE_CACHE = "off";
	const core = await import(pathToFileURL(join(dir, "dist/bundle/index.js")).href);
	const { AJV_OPTIONS } = await import(pathToFileURL(join(dir, "dist/config/schema-validator.js")).href);
	const { envelopeSchema } = await import(pathToFileURL(join(dir, "dist/config/config-schema.js")).href);
	// What config-file.ts checks the whole file against; then each plugin's options, set keys and types.
	const schemas = [envelopeSchema];
	for (const pkg of PLUGIN_DIRS) {
		const { default: plugin } = await import(pathToFileURL(join(ROOT, pkg, "dist/index.js")).href);
		if (plugin.optionsSchema) schemas.push(plugin.optionsSchema);
		schemas.push(...Object.values(plugin.setKeys ?? {}));
		if (!plugin.containerModule) continue;
		const container = new core.inversify.Container();
		container.load(plugin.containerModule);
		for (const token of [core.TOKENS.SourceType, core.TOKENS.DestinationType]) {
			if (container.isBound(token)) schemas.push(...container.getAll(token).map((type) => type.optionsSchema));
		}
	}
	const { Ajv } = await import("ajv");
	const { default: standaloneCode } = await import("ajv/dist/standalone/index.js");
	const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true, esm: true } });
	const out = join(dir, "dist/precompiled");
	rmSync(out, { recursive: true, force: true });
	mkdirSync(out, { recursive: true });
	const keys = [...new Set(schemas.map((schema) => JSON.stringify(schema)))];
	for (const [i, key] of keys.entries()) {
		writeFileSync(join(out, `v${i}.js`), standaloneCode(ajv, ajv.compile(JSON.parse(key))));
	}
	const index = [
		...keys.map((_, i) => `import { validate as v${i} } from "./v${i}.js";`),
		`export const precompiledValidators = new Map([${keys.map((key, i) => `[${JSON.stringify(key)}, v${i}]`).join(", ")}]);`,
	];
	writeFileSync(join(out, "index.js"), `${index.join("\n")}\n`);
	return join(out, "index.js");
}

/**
 * yargs and its help layout measure text with string-width, which builds an Intl.Segmenter and
 * Unicode-property regexes as it loads: a fifth of a short command's start. Each import of it
 * becomes a module that measures printable ASCII (all of holdfast's own words) by its length,
 * as string-width does, and loads the real one, bundled as it was, on the first other text.
 */
export function lazyStringWidth() {
	return {
		name: "lazy-string-width",
		setup(b) {
			b.onResolve({ filter: /^string-width$/ }, async (args) => {
				if (args.pluginData?.real) return undefined;
				const real = await b.resolve(args.path, {
					importer: args.importer,
					resolveDir: args.resolveDir,
					kind: args.kind,
					pluginData: { real: true },
				});
				return real.errors.length > 0 ? real : { path: real.path, namespace: "lazy-string-width" };
			});
			b.onLoad({ filter: /.*/, namespace: "lazy-string-width" }, (args) => ({
				contents: [
					"let real;",
					"export default function stringWidth(text, options) {",
					"\tif (typeof text === 'string' && /^[\\x20-\\x7e]*$/.test(text)) return text.length;",
					`\treal ??= require(${JSON.stringify(args.path)}).default;`,
					"\treturn real(text, options);",
					"}",
				].join("\n"),
				resolveDir: dirname(args.path),
				loader: "js",
			}));
		},
	};
}

/**
 * yargs imports two checks from node:assert and makes them on every run; loading node:assert
 * (a few ms: it sets up stderr and its colours) is most of their cost. They are the same
 * checks here: Object.is, as node:assert's, and an AssertionError when one fails.
 */
function ownAssert() {
	return {
		name: "own-assert",
		setup(b) {
			b.onResolve({ filter: /^(node:)?assert$/ }, (args) =>
				/[\\/]node_modules[\\/]yargs[\\/]/.test(args.importer) ? { path: "assert", namespace: "own-assert" } : undefined,
			);
			b.onLoad({ filter: /.*/, namespace: "own-assert" }, () => ({
				contents: [
					"const fail = (message, otherwise) => {",
					"\tif (message instanceof Error) throw message;",
					'\tthrow Object.assign(new Error(message ?? otherwise), { name: "AssertionError", code: "ERR_ASSERTION" });',
					"};",
					"export const strictEqual = (actual, expected, message) => {",
					'\tif (!Object.is(actual, expected)) fail(message, "Expected values to be strictly equal");',
					"};",
					"export const notStrictEqual = (actual, expected, message) => {",
					'\tif (Object.is(actual, expected)) fail(message, "Expected values to be strictly unequal");',
					"};",
				].join("\n"),
				loader: "js",
			}));
		},
	};
}

/**
 * yargs guesses a version and looks for its settings in the nearest package.json, walking up
 * from the working directory and reading every folder on the way: `/tmp` with thousands of
 * entries cost a short command 10 ms. holdfast names its version and keeps no yargs settings
 * in a package.json, so its bundle looks for none: the walk finds nothing, as it would find no
 * such key.
 */
function noPackageLookup() {
	return {
		name: "no-package-lookup",
		setup(b) {
			b.onResolve({ filter: /^escalade\/sync$/ }, (args) =>
				/[\\/]node_modules[\\/]yargs[\\/]/.test(args.importer) ? { path: "escalade", namespace: "no-package-lookup" } : undefined,
			);
			b.onLoad({ filter: /.*/, namespace: "no-package-lookup" }, () => ({
				contents: "export default function findUp() {\n\treturn undefined;\n}",
				loader: "js",
			}));
		},
	};
}

/** Each package's vendor file, named for it: its name also names its code in the cache folder. */
const vendorFile = (spec) => `${spec.pkg.split("/").at(-1)}-vendor.cjs`;

/**
 * Builds the vendor file of `spec` into `outdir`: one CommonJS module whose exports are each
 * package's namespace by its name. Returns what the core's bundle needs to import from it: the
 * hash that names its code in the cache and each package's export names.
 */
async function buildVendor(dir, outdir, vendor, name) {
	const file = join(outdir, name);
	await build({
		// Strict, as the packages' ES modules always ran (CommonJS ones keep their own "use strict");
		// and what they read from import.meta, from the CommonJS file's own name.
		banner: { js: '"use strict";\nconst __vendorUrl = require("node:url").pathToFileURL(__filename).href;' },
		define: { "import.meta.url": "__vendorUrl" },
		plugins: [lazyStringWidth(), ownAssert(), noPackageLookup()],
		absWorkingDir: dir,
		stdin: {
			contents: [
				...vendor.sideEffects.map((name) => `import ${JSON.stringify(name)};`),
				...vendor.packages.map((name) => `export * as ${vendorKey(name)} from ${JSON.stringify(name)};`),
				...Object.entries(vendor.files ?? {}).map(([key, file]) => `export * as ${key} from ${JSON.stringify(file)};`),
			].join("\n"),
			// An ES module's file (.mjs): a CommonJS package's default export is then its module.exports, as in Node.
			sourcefile: "vendor.mjs",
			resolveDir: dir,
			loader: "js",
		},
		outfile: file,
		bundle: true,
		format: "cjs",
		platform: "node",
		target: "node20",
		legalComments: "none",
		logLevel: "warning",
	});
	const source = readFileSync(file);
	const require = createRequire(file);
	// Built again after the schemas are compiled: the first build's module must not answer for it.
	delete require.cache[file];
	const exported = require(file);
	const keys = [...vendor.packages.map(vendorKey), ...Object.keys(vendor.files ?? {})];
	const names = Object.fromEntries(keys.map((key) => [key, Object.keys(exported[key])]));
	return { hash: createHash("sha256").update(source).digest("hex").slice(0, 16), names };
}

/** A package's name as the key of its namespace in the vendor file. */
const vendorKey = (name) => name.replace(/[^A-Za-z0-9_$]/g, "_");

/**
 * Each import of a vendored package from the package's own code becomes a module that re-exports
 * it from the vendor file, which one shared module runs (once) with the code cache.
 */
function useVendor(dir, vendor, name, built) {
	const packages = new Set([...vendor.packages, ...vendor.sideEffects]);
	const runner = vendor.runner.startsWith("dist/") ? join(dir, vendor.runner) : vendor.runner;
	return {
		name: "vendor",
		setup(b) {
			b.onResolve({ filter: /^[a-z@][\w@/.-]*$/ }, (args) =>
				packages.has(args.path) && !/[\\/]node_modules[\\/]/.test(args.importer)
					? { path: args.path, namespace: "vendor" }
					: undefined,
			);
			b.onResolve({ filter: /^vendor-file$/, namespace: "vendor" }, () => ({ path: "vendor-file", namespace: "vendor" }));
			b.onLoad({ filter: /.*/, namespace: "vendor" }, (args) => {
				if (args.path === "vendor-file") {
					return {
						contents: [
							`import { runCompiled } from ${JSON.stringify(runner)};`,
							`export const vendor = runCompiled(new URL("./${name}", import.meta.url), "${built.hash}").exports;`,
						].join("\n"),
						resolveDir: dir,
						loader: "js",
					};
				}
				const names = built.names[vendorKey(args.path)];
				if (!names) return { contents: 'import "vendor-file";', loader: "js" };
				// Only names an import can spell (yargs also exports "module.exports", for require()).
				const named = names.filter((name) => name !== "default" && /^[A-Za-z_$][\w$]*$/.test(name));
				return {
					contents: [
						'import { vendor } from "vendor-file";',
						`const namespace = vendor.${vendorKey(args.path)};`,
						...(names.includes("default") ? ["export default namespace.default;"] : []),
						`export const { ${named.join(", ")} } = namespace;`,
					].join("\n"),
					loader: "js",
				};
			});
		},
	};
}

/**
 * Points the schema validator's import of the empty map at the compiled one: in the vendor
 * file, when there is one (140 KB of generated code, parsed at every start otherwise).
 */
function usePrecompiled(file, inVendor) {
	return {
		name: "precompiled-validators",
		setup(b) {
			b.onResolve({ filter: /\/precompiled-validators\.js$/ }, () =>
				inVendor ? { path: "precompiled", namespace: "vendor" } : { path: file },
			);
		},
	};
}

export async function bundle({ ifStale = false } = {}) {
	for (const spec of BUNDLES) {
		if (ifStale && !isStale(spec)) continue;
		const dir = join(ROOT, spec.pkg);
		const options = {
			absWorkingDir: dir,
			entryPoints: Object.fromEntries(Object.entries(spec.entries).map(([name, file]) => [name, join(dir, file)])),
			outdir: join(dir, spec.outdir ?? "dist/bundle"),
			bundle: true,
			splitting: spec.splitting ?? true,
			format: "esm",
			platform: "node",
			target: "node20",
			external: spec.external ?? [],
			...(spec.alias ? { alias: Object.fromEntries(Object.entries(spec.alias).map(([from, to]) => [from, join(dir, to)])) } : {}),
			...(spec.mainFields ? { mainFields: spec.mainFields } : {}),
			banner: { js: BANNER },
			chunkNames: "chunk-[hash]",
			sourcemap: true,
			legalComments: "none",
			logLevel: "warning",
			plugins: [lazyStringWidth(), ownAssert(), noPackageLookup()],
		};
		// Chunks are named by their hash: a bundle's folder is emptied first, or every build leaves its old chunks behind.
		rmSync(options.outdir, { recursive: true, force: true });
		const plugins = options.plugins;
		if (spec.vendor) {
			const name = vendorFile(spec);
			options.plugins = [
				...plugins,
				useVendor(dir, spec.vendor, name, await buildVendor(dir, options.outdir, spec.vendor, name)),
			];
		}
		await build(options);
		// Bundled once as is, for the plugins to import while their schemas are collected.
		if (spec.precompile) {
			const precompiled = await precompileSchemas(dir);
			rmSync(options.outdir, { recursive: true, force: true });
			const final = [...plugins, usePrecompiled(precompiled, spec.vendor !== undefined)];
			if (spec.vendor) {
				const name = vendorFile(spec);
				const vendor = { ...spec.vendor, files: { precompiled } };
				final.push(useVendor(dir, vendor, name, await buildVendor(dir, options.outdir, vendor, name)));
			}
			await build({ ...options, plugins: final });
		}
		writeFileSync(join(options.outdir, STAMP), `${new Date().toISOString()}\n`);
	}
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
	await bundle({ ifStale: process.argv.includes("--if-stale") });
}
