import { existsSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { HoldfastError } from "../host/errors.js";

/**
 * What a plugin package says about itself in package.json, readable without running it:
 * `"holdfast": { "engine": "^0.1.0", "contributes": ["destination:b2"] }`.
 */
export interface PluginManifest {
	/** The entry as written in the config. */
	readonly spec: string;
	readonly packageName?: string;
	readonly version?: string;
	readonly contributes: readonly string[];
	/** The @holdfast/core versions it works with (`holdfast.engine`): checked before its code is imported. */
	readonly engine?: string;
	/** What `import()` loads. */
	readonly entryUrl: string;
}

export function resolvePluginManifest(spec: string, configDir: string, fallbackDirs: readonly string[]): PluginManifest {
	const isPath = spec.startsWith(".") || isAbsolute(spec);
	if (isPath) {
		const target = resolve(configDir, spec);
		if (!existsSync(target)) throw new HoldfastError("PLUGIN_LOAD", `plugin ${spec}: no such file or folder (${target})`);
		if (statSync(target).isDirectory()) return fromPackageDir(spec, target);
		return { spec, contributes: [], entryUrl: pathToFileURL(target).href };
	}
	for (const dir of [configDir, ...fallbackDirs]) {
		const pkgJson = findPackageJson(spec, dir);
		if (pkgJson) return fromPackageDir(spec, dirname(pkgJson));
	}
	throw new HoldfastError("PLUGIN_LOAD", `plugin ${spec}: package not found (npm install ${spec})`);
}

function findPackageJson(name: string, fromDir: string): string | undefined {
	try {
		return createRequire(join(fromDir, "noop.js")).resolve(`${name}/package.json`);
	} catch {
		// Packages whose `exports` hide package.json: walk node_modules ourselves.
		let dir = fromDir;
		for (;;) {
			const candidate = join(dir, "node_modules", name, "package.json");
			if (existsSync(candidate)) return candidate;
			const parent = dirname(dir);
			if (parent === dir) return undefined;
			dir = parent;
		}
	}
}

function fromPackageDir(spec: string, dir: string): PluginManifest {
	const pkgPath = join(dir, "package.json");
	if (!existsSync(pkgPath)) throw new HoldfastError("PLUGIN_LOAD", `plugin ${spec}: ${dir} has no package.json`);
	const pkg = JSON.parse(readFileSync(pkgPath, "utf8")) as {
		name?: string;
		version?: string;
		main?: string;
		exports?: unknown;
		holdfast?: { contributes?: string[]; engine?: string };
	};
	const main = mainEntry(pkg) ?? "index.js";
	return {
		spec,
		...(pkg.name ? { packageName: pkg.name } : {}),
		...(pkg.version ? { version: pkg.version } : {}),
		contributes: pkg.holdfast?.contributes ?? [],
		...(pkg.holdfast?.engine !== undefined ? { engine: pkg.holdfast.engine } : {}),
		entryUrl: pathToFileURL(join(dir, main)).href,
	};
}

function mainEntry(pkg: { main?: string; exports?: unknown }): string | undefined {
	const root =
		typeof pkg.exports === "object" && pkg.exports !== null ? (pkg.exports as Record<string, unknown>)["."] : pkg.exports;
	if (typeof root === "string") return root;
	if (root && typeof root === "object") {
		const conditions = root as Record<string, unknown>;
		for (const key of ["import", "default", "node"]) if (typeof conditions[key] === "string") return conditions[key] as string;
	}
	return pkg.main;
}
