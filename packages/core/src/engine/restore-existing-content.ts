import { closeSync, constants, fchmodSync, fstatSync, futimesSync, openSync, readSync, type Stats } from "node:fs";
import { readFully } from "../host/read-fully.js";
import type { BlobWork } from "../repository/blob-work.js";
import type { Repository } from "../repository/repository.js";
import type { TreeNode } from "../repository/tree.js";

/**
 * The snapshot's mode and mtime, set on a file found to hold its content (`--overwrite`), but
 * only on a file of one name (another name, maybe outside the target, would change too) whose
 * owner is already `owner` when given (root: an inode another user made is never taken over).
 * Any other file is written anew.
 */
export interface MetadataFix {
	readonly mode: number;
	readonly time: number | Date;
	readonly owner?: { readonly uid: number; readonly gid: number };
}

/** A file of the target to compare with a snapshot's file: where each of its blobs lies and what its ID is. */
export interface ContentCheck {
	readonly path: Uint8Array;
	readonly size: number;
	/** Each blob's length, in the file's order. */
	readonly lengths: Uint32Array;
	readonly ids: readonly string[];
	/** Set on the same descriptor once the content matches: never on a file put at the path since. */
	readonly fix?: MetadataFix;
	/** Shared: nonzero once the restore stops, and a check under way ends at its next piece. */
	readonly stop?: Int32Array;
}

/** Whether the file holds the snapshot's content; undefined when that cannot be told (no read permission, a stopped restore). */
export type ContentVerdict = boolean | undefined;

const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
// A file swapped for a named pipe since it was looked at would block an open without it.
const O_NONBLOCK = constants.O_NONBLOCK ?? 0;
/** Bytes read and hashed at a time, whole blobs only (a blob is at most 8 MiB, and the buffer grows for a larger one). */
const PIECE = 8 * 1024 * 1024;

/**
 * Whether a file the target already holds is the snapshot's file, told by its content: each
 * blob's keyed ID computed over the file's bytes where that blob lies. Size, mode and times
 * alone would take a file encrypted in place, its times put back, for restored. Nothing is
 * read from the store. Read and hashed on a worker thread (`BlobPool.holdsContent`; a small
 * file on this one), so the restore's walk goes on meanwhile. False when the file differs or is not a regular file any
 * more; undefined when it cannot be told: a file this user may not read, a blob the index does
 * not place, a restore stopping.
 */
export async function holdsSnapshotContent(
	repository: Repository,
	path: Buffer,
	node: TreeNode,
	options: { fix?: MetadataFix; stop?: Int32Array } = {},
): Promise<ContentVerdict> {
	const ids = node.content ?? [];
	const lengths = new Uint32Array(ids.length);
	let total = 0;
	for (let i = 0; i < ids.length; i++) {
		const id = ids[i] as string;
		const location = repository.index.blobs.get(id) ?? (await repository.locateBlob(id).catch(() => undefined));
		if (!location) return undefined;
		lengths[i] = location.rawLength;
		total += location.rawLength;
	}
	if (total !== node.size) return false;
	return repository.pool.holdsContent({ path, size: node.size, lengths, ids, ...options });
}

/** The thread's read buffer, kept between checks. */
let buffer: Buffer | undefined;

function room(bytes: number): Buffer {
	if (!buffer || buffer.length < bytes) buffer = Buffer.allocUnsafeSlow(Math.max(bytes, 64 * 1024));
	return buffer;
}

/** `holdsSnapshotContent`'s reading, hashing and metadata, on the thread that runs it (a worker's, or the main thread's for a small file). */
export function holdsContent(work: BlobWork, check: ContentCheck): ContentVerdict {
	const { size, lengths, ids, stop } = check;
	let fd: number;
	try {
		// Never through a link: one put in its place since it was looked at is not the snapshot's file.
		fd = openSync(Buffer.from(check.path), constants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
	} catch (error) {
		const code = (error as NodeJS.ErrnoException).code;
		return code === "EACCES" || code === "EPERM" ? undefined : false;
	}
	try {
		const info = fstatSync(fd);
		if (!info.isFile() || info.size !== size) return false;
		let next = 0;
		let position = 0;
		while (next < ids.length) {
			if (stop && Atomics.load(stop, 0) !== 0) return undefined;
			const bytes = room(Math.max(lengths[next] as number, Math.min(PIECE, size - position)));
			// As many whole blobs as the buffer holds.
			const regions: number[] = [];
			let length = 0;
			let end = next;
			while (end < ids.length && length + (lengths[end] as number) <= bytes.length) {
				regions.push(length, lengths[end] as number);
				length += lengths[end] as number;
				end++;
			}
			if (readFully(fd, bytes.subarray(0, length), position) < length) return false;
			const found = work.hash(bytes.subarray(0, length), Uint32Array.from(regions));
			for (let i = 0; i < found.length; i++) if (found[i] !== ids[next + i]) return false;
			next = end;
			position += length;
		}
		// Grown since it was looked at: more than the snapshot's file.
		if (readSync(fd, room(1), 0, 1, position) !== 0) return false;
		return check.fix ? fixed(fd, info, check.fix) : true;
	} catch {
		return false;
	} finally {
		closeSync(fd);
	}
}

/** The snapshot's metadata on the file checked; false where it may not or cannot be set (the file is then written anew). */
function fixed(fd: number, info: Stats, fix: MetadataFix): boolean {
	if (info.nlink !== 1) return false;
	if (fix.owner && (info.uid !== fix.owner.uid || info.gid !== fix.owner.gid)) return false;
	try {
		fchmodSync(fd, fix.mode & 0o7777);
		futimesSync(fd, fix.time, fix.time);
		return true;
	} catch {
		return false;
	}
}
