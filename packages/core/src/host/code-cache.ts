import { createHash, randomBytes } from "node:crypto";
import {
	closeSync,
	constants,
	fstatSync,
	openSync,
	readdirSync,
	readFileSync,
	renameSync,
	rmSync,
	type Stats,
	statSync,
	writeFileSync,
} from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { cachedDataVersionTag } from "node:v8";
import { Script } from "node:vm";
import { makeFoldersSync, userCacheFolder } from "./folders.js";

// The third-party code the core and the CLI bundle (yaml, inversify, semver, tapable, keyv, the
// config validators ajv generates; yargs) is 1.1 MB of JavaScript that V8 parses again at every
// start: on Node 20, a fifth of a short command's time. Node 22 and later keep compiled code between runs themselves (module.enableCompileCache,
// which covers ES modules); Node 20 does that only for what runs through vm.Script with cached
// data. So the build puts those libraries in one CommonJS file (scripts/bundle.mjs), and this
// runs it with V8's code cache kept in the user's cache folder, as Node 22 would keep its own.
//
// V8 takes cached code only for the same source length, V8 version and V8 flags, and says when
// it rejects it; then the file compiles as if there were none. Cached code of another build is
// never offered: the file's name carries the build's hash of the source, its size and time.
// V8 does not check the code's own bytes (a damaged file crashed Node 20 with SIGSEGV), so each
// file starts with the SHA-256 of the code, which is checked before V8 sees it.
//
// Cached code is code holdfast runs, with the repository's keys in its memory, and V8 checks a
// source only by its length: code compiled from another script of that length is taken. So the
// folder and each file must be the user's own and writable by no one else, as ssh asks of its
// keys; otherwise the cache is neither read nor written. root running with a user's HOME (sudo
// that keeps it) finds the user's folder and leaves it alone.

/** Where the compiled code of each build and V8 flag set is kept; undefined without a home, or with HOLDFAST_CODE_CACHE=off. */
export function codeCacheFolder(env: NodeJS.ProcessEnv = process.env): string | undefined {
	if (env.HOLDFAST_CODE_CACHE === "off") return undefined;
	const folder = userCacheFolder(env);
	return folder === undefined ? undefined : join(folder, "compiled");
}

/** What `runCompiled` did with the cache ("off": none, or a folder not the user's alone): for tests. */
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
	const usable = folder !== undefined && ownFolder(folder) !== false;
	const cacheFile = usable ? join(folder, `${name}-${build}-${stamp}-${tag.toString(36)}.v8`) : undefined;
	let cached: Buffer | undefined;
	let damaged = false;
	if (cacheFile !== undefined) {
		try {
			const own = readOwnFile(cacheFile);
			cached = own && intact(own);
			damaged = own !== undefined && cached === undefined;
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

/** Whether `folder` is this user's alone: undefined when it does not exist yet. Where there are no user IDs (Windows), true. */
function ownFolder(folder: string): boolean | undefined {
	let info: Stats;
	try {
		info = statSync(folder);
	} catch {
		return undefined;
	}
	return info.isDirectory() && ownAlone(info);
}

function ownAlone(info: Stats): boolean {
	const uid = process.geteuid?.();
	return uid === undefined || (info.uid === uid && (info.mode & 0o022) === 0);
}

/** A cache file's bytes when it is a file of this user's that no one else may write; undefined otherwise. */
function readOwnFile(path: string): Buffer | undefined {
	const fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
	try {
		const info = fstatSync(fd);
		return info.isFile() && ownAlone(info) ? readFileSync(fd) : undefined;
	} finally {
		closeSync(fd);
	}
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
	const folder = dirname(cacheFile);
	// A name no one can guess, made new (never through a link someone put there), and removed when the write fails.
	const temporary = join(folder, `.${ofFile}${randomBytes(8).toString("hex")}.tmp`);
	try {
		// Private, as the unlock hints beside it are: whichever is written first makes the folder.
		makeFoldersSync(folder, 0o700);
		if (!ownFolder(folder)) return;
		const code = script.createCachedData();
		writeFileSync(temporary, Buffer.concat([createHash("sha256").update(code).digest(), code]), { flag: "wx", mode: 0o600 });
		renameSync(temporary, cacheFile);
		for (const other of readdirSync(folder)) {
			const stale = other.endsWith(".tmp") || (other.startsWith(ofFile) && !other.startsWith(ofBuild) && other.endsWith(".v8"));
			if (!stale) continue;
			const path = join(folder, other);
			// Another process's write in flight is a minute old at most.
			if (Date.now() - statSync(path).mtimeMs > (other.endsWith(".tmp") ? 60_000 : STALE_MS)) rmSync(path, { force: true });
		}
	} catch {
		// a cache folder it cannot write (full, read-only): the next start compiles again
		try {
			rmSync(temporary, { force: true });
		} catch {
			// nothing was made there
		}
	}
}
