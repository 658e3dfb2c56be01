import { mkdirSync, Stats, statSync } from "node:fs";
import { mkdir, stat } from "node:fs/promises";
import { constants, homedir } from "node:os";
import { isAbsolute, join } from "node:path";

/**
 * `mkdir -p` that ends. Node's recursive mkdir loops forever, at full CPU, when a folder that
 * exists still says ENOENT for a child: a dangling symlink on the way, or a path under /proc.
 * Here each folder is made alone, its parent first when it is missing, and a second ENOENT is
 * the answer. A refusal names its real cause (EACCES, EROFS) on the first folder that is missing.
 */
export async function makeFolders(path: string | Buffer, mode = 0o777): Promise<void> {
	try {
		await mkdir(path, { mode });
	} catch (error) {
		const code = errno(error);
		if (code === "EEXIST") {
			mustBeFolder(await stat(path).catch((failed: unknown) => failed), path);
			return;
		}
		const parent = parentOf(path);
		if (code !== "ENOENT" || parent === undefined) throw error;
		await makeFolders(parent, mode);
		await mkdir(path, { mode }).catch(async (again: unknown) => {
			if (errno(again) !== "EEXIST") throw again;
			mustBeFolder(await stat(path).catch((failed: unknown) => failed), path);
		});
	}
}

/** `makeFolders` for the callers that cannot wait: the same steps, synchronous. */
export function makeFoldersSync(path: string | Buffer, mode = 0o777): void {
	try {
		mkdirSync(path, { mode });
	} catch (error) {
		const code = errno(error);
		if (code === "EEXIST") {
			mustBeFolder(statOrError(path), path);
			return;
		}
		const parent = parentOf(path);
		if (code !== "ENOENT" || parent === undefined) throw error;
		makeFoldersSync(parent, mode);
		try {
			mkdirSync(path, { mode });
		} catch (again) {
			if (errno(again) !== "EEXIST") throw again;
			mustBeFolder(statOrError(path), path);
		}
	}
}

/** After EEXIST: fine for a folder; a file there is ENOTDIR; a dangling link throws its stat's ENOENT. */
function mustBeFolder(info: unknown, path: string | Buffer): void {
	if (info instanceof Stats) {
		if (info.isDirectory()) return;
	} else throw info;
	// Shaped as the system's own error, so callers that name the cause from errno say "not a directory".
	throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path.toString()}'`), {
		code: "ENOTDIR",
		errno: -constants.errno.ENOTDIR,
		syscall: "mkdir",
		path: path.toString(),
	});
}

function statOrError(path: string | Buffer): unknown {
	try {
		return statSync(path);
	} catch (error) {
		return error;
	}
}

function errno(error: unknown): string | undefined {
	return (error as NodeJS.ErrnoException | undefined)?.code;
}

/** The folder holding `path`, by bytes (names need not be UTF-8); undefined at the root or for a bare name. */
function parentOf(path: string | Buffer): string | Buffer | undefined {
	const bytes = typeof path === "string" ? Buffer.from(path) : path;
	let end = bytes.length;
	while (end > 1 && bytes[end - 1] === 0x2f) end--;
	const slash = bytes.lastIndexOf(0x2f, end - 1);
	if (slash < 0) return undefined;
	const parent = slash === 0 ? bytes.subarray(0, 1) : bytes.subarray(0, slash);
	if (parent.length >= end) return undefined;
	return typeof path === "string" ? parent.toString() : parent;
}

/**
 * holdfast's folder in the user's cache folder (restic keeps its cache there too):
 * `$XDG_CACHE_HOME/holdfast` when that is an absolute path, else `~/.cache/holdfast`; undefined
 * without a home (no HOME, and a uid without a passwd entry: a container's). It holds the
 * unlock hints and the compiled code, nothing that cannot be made again.
 */
export function userCacheFolder(env: NodeJS.ProcessEnv = process.env): string | undefined {
	let cache = env.XDG_CACHE_HOME;
	if (!cache || !isAbsolute(cache)) {
		try {
			cache = join(homedir(), ".cache");
		} catch {
			return undefined;
		}
	}
	return isAbsolute(cache) ? join(cache, "holdfast") : undefined;
}
