import { randomBytes } from "node:crypto";
import {
	closeSync,
	constants,
	fchmodSync,
	fchownSync,
	fstatSync,
	ftruncateSync,
	futimesSync,
	open as openCallback,
	openSync,
	renameSync,
	rmSync,
	writeSync,
} from "node:fs";
import { lchown, link, lutimes, rename, rm, symlink } from "node:fs/promises";
import { promisify } from "node:util";
import { threadId } from "node:worker_threads";
import type { TreeNode } from "../repository/tree.js";
import { nsToUtimeSeconds } from "./restore-times.js";

const TEMP_MARK = ".holdfast-tmp-";
const TEMP_PATTERN = /^\..*\.holdfast-tmp-[0-9a-f]{12}$/s;
const NAME_MAX = 255;
/** Zero runs this long, on this alignment, become holes: the file system's block size or a multiple. */
export const HOLE_BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(HOLE_BLOCK);
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
const openAsync = promisify(openCallback);
/** Read once: a file is created with its final mode when the umask leaves that mode whole. */
const UMASK = process.umask();
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW;

/**
 * The mode a temporary file is created with: the final one without special bits or write for
 * others (those wait for fchmod, after the owner is set and the bytes are in).
 */
export function createMode(mode: number): number {
	return mode & 0o755;
}

/** True when the file needs an fchmod after creation: the umask or createMode took bits away. */
export function needsChmod(mode: number, umask: number = UMASK): boolean {
	return (mode & 0o7777) !== (createMode(mode) & ~umask);
}

/** True for a name this writer gives its temporary files: what a killed restore leaves behind. */
export function isRestoreTemp(name: Buffer): boolean {
	return TEMP_PATTERN.test(name.toString("latin1"));
}

/** Random per thread, a count per file: unique names without a call for random bytes per file. */
const TEMP_PREFIX = randomBytes(3).toString("hex");
/** The thread's number in the count's top bits: the worker threads that write files never pick one another's names. */
const THREAD_BITS = (threadId & 0xf) << 20;
let tempCount = 0;

/** `.<name>.holdfast-tmp-<random>` beside `path`, the name cut so the whole stays a legal name. */
export function tempPathFor(dir: Buffer, name: Buffer): Buffer {
	tempCount = (tempCount + 1) % 0x100000;
	const suffix = Buffer.from(`${TEMP_MARK}${TEMP_PREFIX}${(THREAD_BITS | tempCount).toString(16).padStart(6, "0")}`);
	const kept = name.subarray(0, NAME_MAX - 1 - suffix.length);
	return Buffer.concat([dir, Buffer.from("/."), kept, suffix]);
}

/** What a restored file gets besides its bytes: the snapshot node's owner, mode and mtime. */
export type FileMeta = Pick<TreeNode, "uid" | "gid" | "mode" | "mtime">;

export interface Placement {
	readonly dir: Buffer;
	readonly name: Buffer;
	readonly path: Buffer;
	/** Set when the path holds a directory that must go first (--overwrite). */
	readonly removeFirst?: boolean;
}

/**
 * A file written under a temporary name, then renamed into place: the path holds the old
 * entry or the complete new file, never part of one. Blobs arrive in any order and are
 * written where they belong; runs of zero blocks are left as holes. The calls are
 * synchronous: into the page cache they cost less than a hop to the libuv pool each, and
 * the main thread only writes while the workers open blobs.
 */
export class TempFile {
	readonly temp: Buffer;
	#fd: number | undefined;
	/** End of the last byte written: past it, the file is extended over a trailing hole. */
	#end = 0;

	constructor(
		readonly at: Placement,
		readonly node: FileMeta,
		readonly size: number,
	) {
		this.temp = tempPathFor(at.dir, at.name);
	}

	/**
	 * Creates the temporary file on the libuv pool: creating files is the slow step on many
	 * disks, and several at once hide its latency while blobs are read.
	 */
	async create(): Promise<void> {
		if (this.#fd !== undefined) return;
		const fd = await openAsync(this.temp, CREATE_FLAGS, createMode(this.node.mode));
		if (this.#fd === undefined) this.#fd = fd;
		else closeSync(fd);
	}

	write(data: Buffer, offset: number): void {
		this.wrote(writeSparse(this.#open(), data, offset));
	}

	/** The descriptor, for a thread that writes blobs into the file itself (then says so with `wrote`). */
	get fd(): number {
		return this.#open();
	}

	/** Bytes up to `end` were written by another thread: the trailing hole past them is the file's to extend over. */
	wrote(end: number): void {
		if (end > this.#end) this.#end = end;
	}

	/** Size, owner, mode and times set, then the rename: the file appears whole. */
	finish(isRoot: boolean): void {
		const fd = this.#open();
		if (this.#end < this.size) ftruncateSync(fd, this.size);
		if (isRoot) {
			try {
				fchownSync(fd, this.node.uid, this.node.gid);
			} catch {
				// an owner that cannot be set leaves the restoring user's
			}
		}
		// Most files were created with their final mode: one syscall fewer per file.
		if (needsChmod(this.node.mode)) fchmodSync(fd, this.node.mode & 0o7777);
		const time = nsToUtimeSeconds(this.node.mtime);
		futimesSync(fd, time, time);
		this.#fd = undefined;
		closeSync(fd);
		// rm does not follow symlinks inside the folder it removes.
		if (this.at.removeFirst) rmSync(this.at.path, { recursive: true, force: true });
		renameSync(this.temp, this.at.path);
	}

	/** Closes and removes the temporary file after a failure; never throws. */
	abandon(): void {
		if (this.#fd !== undefined) {
			try {
				closeSync(this.#fd);
			} catch {
				// already closed
			}
			this.#fd = undefined;
		}
		try {
			rmSync(this.temp, { force: true });
		} catch {
			// the failure that led here is the one to report
		}
	}

	#open(): number {
		this.#fd ??= openSync(this.temp, CREATE_FLAGS, createMode(this.node.mode));
		return this.#fd;
	}
}

/** A symlink made under a temporary name and renamed over whatever link or file was there. */
export async function placeSymlink(at: Placement, target: Buffer, node: TreeNode, isRoot: boolean): Promise<void> {
	const temp = tempPathFor(at.dir, at.name);
	await placeMade(
		at,
		temp,
		() => symlink(target, temp),
		async () => {
			// A link's own owner and time (lchown, lutimes): never those of what it points to.
			if (isRoot) await lchown(temp, node.uid, node.gid).catch(() => undefined);
			const time = nsToUtimeSeconds(node.mtime);
			await lutimes(temp, time, time).catch(() => undefined);
		},
	);
}

/** Something without content: made at `temp`, given its metadata, renamed into place; the temporary name is removed on failure. */
async function placeMade(at: Placement, temp: Buffer, make: () => Promise<void>, finish: () => Promise<void>): Promise<void> {
	try {
		await make();
		await finish();
		await moveIntoPlace(temp, at);
	} catch (error) {
		await rm(temp, { force: true }).catch(() => undefined);
		throw error;
	}
}

/**
 * A named pipe, made by the system's `mkfifo`: Node has no call for it. It carries no data,
 * but programs that expect it at its path fail without it. The temporary name is ASCII; a
 * folder whose path is not UTF-8 is reached through an inherited descriptor (Linux). Owner,
 * mode and time are set through a descriptor opened without following links (and without
 * waiting for a writer), as for files: a link swapped in for the new pipe is never followed.
 */
export async function placeFifo(at: Placement, node: TreeNode, isRoot: boolean): Promise<void> {
	const temp = tempPathFor(at.dir, Buffer.from("fifo"));
	const base = temp.subarray(at.dir.length + 1).toString("latin1");
	const dirText = at.dir.toString("utf8");
	const plain = Buffer.from(dirText).equals(at.dir);
	const dirFd = plain ? undefined : openSync(at.dir, constants.O_RDONLY | (constants.O_DIRECTORY ?? 0));
	try {
		await placeMade(
			at,
			temp,
			() => mkfifo(plain ? `${dirText}/${base}` : `/dev/fd/3/${base}`, dirFd),
			async () => {
				const fd = openSync(temp, constants.O_RDONLY | constants.O_NONBLOCK | O_NOFOLLOW);
				try {
					if (!fstatSync(fd).isFIFO()) throw new Error("the new named pipe was replaced before it was finished");
					if (isRoot) fchownSync(fd, node.uid, node.gid);
					fchmodSync(fd, node.mode & 0o7777);
					const time = nsToUtimeSeconds(node.mtime);
					futimesSync(fd, time, time);
				} finally {
					closeSync(fd);
				}
			},
		);
	} finally {
		if (dirFd !== undefined) closeSync(dirFd);
	}
}

/** Runs `mkfifo`; a failure says that mkfifo failed and why, never as if the path were missing. */
async function mkfifo(path: string, dirFd: number | undefined): Promise<void> {
	// Loaded with the first named pipe: every command's start would pay for node:child_process.
	const { spawn } = await import("node:child_process");
	return new Promise((resolve, reject) => {
		const child = spawn("mkfifo", ["-m", "600", path], {
			stdio: ["ignore", "ignore", "pipe", ...(dirFd === undefined ? [] : [dirFd])],
		});
		let said = "";
		child.stderr?.on("data", (chunk: Buffer) => {
			said += chunk.toString("utf8");
		});
		child.on("error", (error: NodeJS.ErrnoException) =>
			reject(
				new Error(error.code === "ENOENT" ? "mkfifo is not installed" : `mkfifo could not run (${error.code ?? error.message})`),
			),
		);
		child.on("close", (code) => {
			if (code === 0) resolve();
			else if (code !== null) reject(new Error(`mkfifo failed: ${said.trim() || `exit ${code}`}`));
		});
	});
}

/** A second name for a file this restore wrote (a hard link in the snapshot). */
export async function placeHardLink(at: Placement, existing: Buffer): Promise<void> {
	const temp = tempPathFor(at.dir, at.name);
	try {
		await link(existing, temp);
		await moveIntoPlace(temp, at);
	} finally {
		// rename() between two names of one file does nothing and leaves the temporary name.
		await rm(temp, { force: true }).catch(() => undefined);
	}
}

async function moveIntoPlace(temp: Buffer, at: Placement): Promise<void> {
	// rm does not follow symlinks inside the folder it removes.
	if (at.removeFirst) await rm(at.path, { recursive: true, force: true });
	await rename(temp, at.path);
}

/** Writes `data` at `offset`, skipping whole aligned blocks of zeros (they read back as zeros from a hole); returns the end of what was written. */
export function writeSparse(fd: number, data: Buffer, offset: number): number {
	let runStart = 0;
	let at = 0;
	let end = 0;
	while (at < data.length) {
		const blockEnd = Math.min(data.length, at + HOLE_BLOCK - ((offset + at) % HOLE_BLOCK));
		const whole = blockEnd - at === HOLE_BLOCK;
		if (whole && data.compare(ZERO_BLOCK, 0, HOLE_BLOCK, at, blockEnd) === 0) {
			if (at > runStart) end = writeAll(fd, data, runStart, at, offset);
			runStart = blockEnd;
		}
		at = blockEnd;
	}
	if (data.length > runStart) end = writeAll(fd, data, runStart, data.length, offset);
	return end;
}

function writeAll(fd: number, data: Buffer, start: number, end: number, offset: number): number {
	while (start < end) start += writeSync(fd, data, start, end - start, offset + start);
	return offset + end;
}
