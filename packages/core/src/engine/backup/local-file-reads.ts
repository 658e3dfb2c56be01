import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from "node:fs";

/**
 * Small files of a batch that the engine reads itself, on a worker thread, from the paths
 * their source gave (`SourceEntry.local`): the main thread only lists and decides, and the
 * open/read/stat/close of many thousands of tiny files runs on every core.
 */
export interface LocalReads {
	/** Every file's path, back to back. */
	readonly paths: Uint8Array;
	/** Where each file's path ends in `paths` (each starts where the one before ends). */
	readonly pathEnds: Uint32Array;
	/** Where each file goes in the batch's buffer: offset, then its listed size, the bytes it must read. */
	readonly regions: Uint32Array;
	/** The inode and times its entry listed: the file read must still be that file, unchanged. */
	readonly inodes: BigUint64Array;
	readonly mtimesNs: BigInt64Array;
	readonly ctimesNs: BigInt64Array;
	/** 1 where a symlink at the path is followed (the entry describes its target). */
	readonly follow: Uint8Array;
}

const NS_PER_S = 1_000_000_000n;

/** A time in nanoseconds as Node's plain-number stats give it: whole seconds (floored) and nanoseconds, summed as doubles. */
function asMs(ns: bigint): number {
	let seconds = ns / NS_PER_S;
	let nanoseconds = ns % NS_PER_S;
	// BigInt division truncates: before 1970 the seconds are one lower and the nanoseconds positive, as the kernel gives them.
	if (nanoseconds < 0n) {
		seconds -= 1n;
		nanoseconds += NS_PER_S;
	}
	return Number(seconds) * 1e3 + Number(nanoseconds) / 1e6;
}

/** A read's outcome in `LocalReadsDone.read`: the file no longer matches its entry, to be read the careful way. */
export const CHANGED_SINCE_LISTED = -1;
/** A read's outcome in `LocalReadsDone.read`: it failed, as `failures` tells. */
export const READ_FAILED = -2;

export interface LocalReadFailure {
	readonly index: number;
	readonly code: string;
	readonly message: string;
}

export interface LocalReadsDone {
	/** Per file: the bytes read (its listed size), CHANGED_SINCE_LISTED or READ_FAILED. */
	readonly read: Int32Array;
	readonly failures: LocalReadFailure[];
}

/** Builds a batch's `LocalReads` one file at a time. */
export class LocalReadsBuilder {
	#paths = Buffer.allocUnsafe(16 * 1024);
	#used = 0;
	readonly #ends: number[] = [];
	readonly #regions: number[] = [];
	readonly #inodes: bigint[] = [];
	readonly #mtimes: bigint[] = [];
	readonly #ctimes: bigint[] = [];
	readonly #follow: number[] = [];

	get count(): number {
		return this.#ends.length;
	}

	add(path: Buffer, followLinks: boolean, offset: number, size: number, inode: bigint, mtimeNs: bigint, ctimeNs: bigint): void {
		if (this.#used + path.length > this.#paths.length) {
			const grown = Buffer.allocUnsafe(Math.max(this.#paths.length * 2, this.#used + path.length));
			this.#paths.copy(grown, 0, 0, this.#used);
			this.#paths = grown;
		}
		this.#used += path.copy(this.#paths, this.#used);
		this.#ends.push(this.#used);
		this.#regions.push(offset, size);
		this.#inodes.push(inode);
		this.#mtimes.push(mtimeNs);
		this.#ctimes.push(ctimeNs);
		this.#follow.push(followLinks ? 1 : 0);
	}

	build(): LocalReads {
		return {
			paths: this.#paths.subarray(0, this.#used),
			pathEnds: new Uint32Array(this.#ends),
			regions: new Uint32Array(this.#regions),
			inodes: BigUint64Array.from(this.#inodes),
			mtimesNs: BigInt64Array.from(this.#mtimes),
			ctimesNs: BigInt64Array.from(this.#ctimes),
			follow: Uint8Array.from(this.#follow),
		};
	}
}

/**
 * Reads each file whole into `into` at its region with direct calls: open (not following a
 * final symlink unless asked, non-blocking so that nothing swapped in makes it wait), an fstat
 * that proves it is still the file listed — a regular file, same inode, same size and mtime —
 * before a byte is read, one read, and an fstat that proves it did not change while read, close. A file that changed is left
 * to the careful reader, which retries; one replaced by another file or type fails as
 * ECHANGED, as any other error does, and the rest are read all the same.
 */
export function readLocalFiles(into: Uint8Array, reads: LocalReads): LocalReadsDone {
	const count = reads.pathEnds.length;
	const read = new Int32Array(count);
	const failures: LocalReadFailure[] = [];
	const paths = Buffer.from(reads.paths.buffer, reads.paths.byteOffset, reads.paths.byteLength);
	let start = 0;
	for (let i = 0; i < count; i++) {
		const end = reads.pathEnds[i] as number;
		const path = paths.subarray(start, end);
		start = end;
		try {
			read[i] = readOne(
				path,
				reads.follow[i] === 1,
				into,
				reads.regions[2 * i] as number,
				reads.regions[2 * i + 1] as number,
				reads.inodes[i] as bigint,
				reads.mtimesNs[i] as bigint,
				reads.ctimesNs[i] as bigint,
			);
		} catch (error) {
			const e = error as NodeJS.ErrnoException;
			read[i] = READ_FAILED;
			failures.push({ index: i, code: e.code ?? "EIO", message: e.message ?? String(error) });
		}
	}
	return { read, failures };
}

function readOne(
	path: Buffer,
	follow: boolean,
	into: Uint8Array,
	offset: number,
	size: number,
	inode: bigint,
	mtimeNs: bigint,
	ctimeNs: bigint,
): number {
	const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (follow ? 0 : constants.O_NOFOLLOW));
	try {
		// Plain numbers, as Node computes them: a BigIntStats per call is garbage of some hundred bytes.
		// A millisecond time as a double resolves about 240 ns today, so the change time is compared
		// too: nothing changes a file without setting it to the kernel's now, utimensat included.
		// An inode past 2^53 rounds the same way on both sides.
		const listedMtimeMs = asMs(mtimeNs);
		const listedCtimeMs = asMs(ctimeNs);
		// Checked before the read: a FIFO swapped in would give up bytes its reader is waiting for.
		const opened = fstatSync(fd);
		if (!opened.isFile() || opened.ino !== Number(inode)) {
			throw Object.assign(new Error("replaced by another file or type since it was listed"), { code: "ECHANGED" });
		}
		const unchanged = (stat: Stats) => stat.size === size && stat.mtimeMs === listedMtimeMs && stat.ctimeMs === listedCtimeMs;
		if (!unchanged(opened)) return CHANGED_SINCE_LISTED;
		// Exactly the listed size: a file that grew while read shows it in its fstat, one that shrank in the count.
		const bytesRead = size === 0 ? 0 : readSync(fd, into, offset, size, null);
		const same = unchanged(fstatSync(fd)) && bytesRead === size;
		return same ? bytesRead : CHANGED_SINCE_LISTED;
	} finally {
		closeSync(fd);
	}
}
