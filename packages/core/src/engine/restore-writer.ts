import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { type FileHandle, lchown, link, lutimes, open, rename, rm, symlink } from "node:fs/promises";
import type { TreeNode } from "../repository/tree.js";
import { nsToUtimeSeconds } from "./restore-times.js";

const TEMP_MARK = ".holdfast-tmp-";
const TEMP_PATTERN = /^\..*\.holdfast-tmp-[0-9a-f]{12}$/s;
const NAME_MAX = 255;
/** Zero runs this long, on this alignment, become holes: the file system's block size or a multiple. */
export const HOLE_BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(HOLE_BLOCK);
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;

/** True for a name this writer gives its temporary files: what a killed restore leaves behind. */
export function isRestoreTemp(name: Buffer): boolean {
	return TEMP_PATTERN.test(name.toString("latin1"));
}

/** `.<name>.holdfast-tmp-<random>` beside `path`, the name cut so the whole stays a legal name. */
export function tempPathFor(dir: Buffer, name: Buffer): Buffer {
	const suffix = Buffer.from(`${TEMP_MARK}${randomBytes(6).toString("hex")}`);
	const kept = name.subarray(0, NAME_MAX - 1 - suffix.length);
	return Buffer.concat([dir, Buffer.from("/."), kept, suffix]);
}

export interface Placement {
	readonly dir: Buffer;
	readonly name: Buffer;
	readonly path: Buffer;
	/** Set when the path holds a directory that must go first (--overwrite). */
	readonly removeFirst?: boolean;
}

/**
 * Writes a file's content and metadata under a temporary name, then renames it into place:
 * the path holds the old entry or the complete new file, never part of one. Runs of zero
 * blocks are left as holes. On any failure the temporary file is removed.
 */
export async function placeFile(
	at: Placement,
	node: TreeNode,
	loadBlob: (id: string) => Promise<Buffer>,
	isRoot: boolean,
): Promise<void> {
	const temp = tempPathFor(at.dir, at.name);
	let handle: FileHandle | undefined;
	try {
		handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | O_NOFOLLOW, 0o600);
		let offset = 0;
		for (const id of node.content ?? []) {
			const data = await loadBlob(id);
			await writeSparse(handle, data, offset);
			offset += data.length;
		}
		// Extends the file over a trailing hole, which no write reached.
		await handle.truncate(offset);
		if (isRoot) await handle.chown(node.uid, node.gid).catch(() => undefined);
		await handle.chmod(node.mode & 0o7777);
		const time = nsToUtimeSeconds(node.mtime);
		await handle.utimes(time, time);
		await handle.close();
		handle = undefined;
		await moveIntoPlace(temp, at);
	} catch (error) {
		await handle?.close().catch(() => undefined);
		await rm(temp, { force: true }).catch(() => undefined);
		throw error;
	}
}

/** A symlink made under a temporary name and renamed over whatever link or file was there. */
export async function placeSymlink(at: Placement, target: Buffer, node: TreeNode, isRoot: boolean): Promise<void> {
	const temp = tempPathFor(at.dir, at.name);
	try {
		await symlink(target, temp);
		if (isRoot) await lchown(temp, node.uid, node.gid).catch(() => undefined);
		const time = nsToUtimeSeconds(node.mtime);
		await lutimes(temp, time, time).catch(() => undefined);
		await moveIntoPlace(temp, at);
	} catch (error) {
		await rm(temp, { force: true }).catch(() => undefined);
		throw error;
	}
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

/** Writes `data` at `offset`, skipping whole aligned blocks of zeros (they read back as zeros from a hole). */
async function writeSparse(handle: FileHandle, data: Buffer, offset: number): Promise<void> {
	let runStart = 0;
	let at = 0;
	while (at < data.length) {
		const blockEnd = Math.min(data.length, at + HOLE_BLOCK - ((offset + at) % HOLE_BLOCK));
		const whole = blockEnd - at === HOLE_BLOCK;
		if (whole && data.compare(ZERO_BLOCK, 0, HOLE_BLOCK, at, blockEnd) === 0) {
			await writeAll(handle, data, runStart, at, offset);
			runStart = blockEnd;
		}
		at = blockEnd;
	}
	await writeAll(handle, data, runStart, data.length, offset);
}

async function writeAll(handle: FileHandle, data: Buffer, start: number, end: number, offset: number): Promise<void> {
	while (start < end) {
		const { bytesWritten } = await handle.write(data, start, end - start, offset + start);
		start += bytesWritten;
	}
}
