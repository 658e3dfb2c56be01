import { createHash } from "node:crypto";
import { closeSync, fstatSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { basename, dirname, extname, isAbsolute, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cachedDataVersionTag } from "node:v8";
import { Script } from "node:vm";
import { makeFoldersSync } from "./folders.js";

// The third-party libraries the core bundles (yaml, inversify, semver, tapable, keyv) are 700 KB
// of JavaScript that V8 parses again at every start: on Node 20, a fifth of a short command's
// time. Node 22 and later keep compiled code between runs themselves (module.enableCompileCache,
// which covers ES modules); Node 20 does that only for what runs through vm.Script with cached
// data. So the build puts those libraries in one CommonJS file (scripts/bundle.mjs), and this
// runs it with V8's code cache kept in the user's cache folder, as Node 22 would keep its own.
//
// V8 takes cached code only for the same source length, V8 version and V8 flags, and says when
// it rejects it; then the file compiles as if there were none. Cached code of another build is
// never offered: the file's name carries the build's hash of the source, its size and time.
// V8 does not check the code's own bytes (a damaged file crashed Node 20 with SIGSEGV), so each
// file starts with the SHA-256 of the code, which is checked before V8 sees it.

/** Where the compiled code of each build and V8 flag set is kept; undefined without a home, or with HOLDFAST_CODE_CACHE=off. */
export function codeCacheFolder(env: NodeJS.ProcessEnv = process.env): string | undefined {
	if (env.HOLDFAST_CODE_CACHE === "off") return undefined;
	let cache = env.XDG_CACHE_HOME;
	if (!cache || !isAbsolute(cache)) {
		try {
			cache = join(homedir(), ".cache");
		} catch {
			return undefined;
		}
	}
	return isAbsolute(cache) ? join(cache, "holdfast", "compiled") : undefined;
}

/** What `runCompiled` did with the cache: for tests and for the start-up benchmark. */
export type CodeCacheUse = "used" | "rejected" | "missing" | "off";

/**
 * Runs the CommonJS file `file` (a `file:` URL or path) once and returns its exports, with
 * V8's code for it taken from the cache folder when that holds code for this very file, and
 * written there as the process exits when it held none that V8 took. `build` names the file's
 * content (the bundler's hash of it). Any failure to read or write the cache only costs the
 * compile it would have saved.
 */
export function runCompiled(
	file: string | URL,
	build: string,
	folder: string | undefined = codeCacheFolder(),
): { exports: unknown; cache: CodeCacheUse } {
	const path = typeof file === "string" ? file : fileURLToPath(file);
	const fd = openSync(path, "r");
	let source: string;
	let stamp: string;
	try {
		const info = fstatSync(fd);
		source = readFileSync(fd, "utf8");
		stamp = `${info.size.toString(36)}.${Math.trunc(info.mtimeMs).toString(36)}`;
	} finally {
		closeSync(fd);
	}
	// The flags' tag changes when a command sets V8 flags (node-tuning.ts): each set has its own file.
	const tag = cachedDataVersionTag();
	const name = basename(path, extname(path));
	const cacheFile = folder === undefined ? undefined : join(folder, `${name}-${build}-${stamp}-${tag.toString(36)}.v8`);
	let cached: Buffer | undefined;
	let damaged = false;
	if (cacheFile !== undefined) {
		try {
			cached = intact(readFileSync(cacheFile));
			damaged = cached === undefined;
		} catch {
			// none yet, or a folder it cannot read: compiled as without a cache
		}
	}
	const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
		filename: path,
		...(cached ? { cachedData: cached } : {}),
	});
	const module = { exports: {} as unknown };
	script.runInThisContext()(module.exports, createRequire(path), module, path, dirname(path));
	const cache: CodeCacheUse =
		cacheFile === undefined
			? "off"
			: damaged || script.cachedDataRejected
				? "rejected"
				: cached === undefined
					? "missing"
					: "used";
	if (cacheFile !== undefined && cache !== "used") {
		// At exit the cache holds every function the command compiled, not only the file's top level.
		process.once("exit", () => {
			// Flags set since (a backup's young generation) would make V8 reject this code under this name.
			if (cachedDataVersionTag() === tag) saveCompiled(script, cacheFile, `${name}-`, `${name}-${build}-${stamp}-`);
		});
	}
	return { exports: module.exports, cache };
}

/** The code of a cache file whose hash matches it; undefined for a damaged file. */
function intact(file: Buffer): Buffer | undefined {
	if (file.length <= HASH_BYTES) return undefined;
	const code = file.subarray(HASH_BYTES);
	return createHash("sha256").update(code).digest().equals(file.subarray(0, HASH_BYTES)) ? code : undefined;
}

const HASH_BYTES = 32;

/** Code of another build last written this long ago is removed: an upgrade leaves its old code behind. */
const STALE_MS = 7 * 86_400_000;

/**
 * Writes the code whole (another process may be reading it), and removes that of other builds
 * of the file written over a week ago: two installations used in turn keep theirs.
 */
function saveCompiled(script: Script, cacheFile: string, ofFile: string, ofBuild: string): void {
	try {
		const folder = dirname(cacheFile);
		// Private, as the unlock hints beside it are: whichever is written first makes the folder.
		makeFoldersSync(folder, 0o700);
		const temporary = `${cacheFile}.${process.pid}.tmp`;
		const code = script.createCachedData();
		writeFileSync(temporary, Buffer.concat([createHash("sha256").update(code).digest(), code]));
		renameSync(temporary, cacheFile);
		for (const other of readdirSync(folder)) {
			if (!other.startsWith(ofFile) || other.startsWith(ofBuild) || !other.endsWith(".v8")) continue;
			const path = join(folder, other);
			if (Date.now() - statSync(path).mtimeMs > STALE_MS) rmSync(path, { force: true });
		}
	} catch {
		// a cache folder it cannot write: the next start compiles again
	}
}
