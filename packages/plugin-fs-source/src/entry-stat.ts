import { type BigIntStats, constants } from "node:fs";
import type { EntryType } from "@holdfast/core";

/**
 * What the walk keeps of a stat. A BigIntStats carries some twenty BigInts and a dozen
 * methods; a scan holds one per listed entry until the walk passes it, and each is garbage
 * the collector chases on the thread that sets the backup's pace. Sizes are plain numbers
 * (exact to 8 PiB); times and identities stay BigInts, as entries carry them.
 */
export interface EntryStat {
	readonly type: EntryType;
	readonly mode: number;
	readonly uid: number;
	readonly gid: number;
	readonly size: number;
	readonly mtimeNs: bigint;
	readonly ctimeNs: bigint;
	readonly ino: bigint;
	readonly dev: bigint;
}

export function entryStat(info: BigIntStats): EntryStat {
	const mode = Number(info.mode);
	return {
		type: typeOfMode(mode),
		mode,
		uid: Number(info.uid),
		gid: Number(info.gid),
		size: Number(info.size),
		mtimeNs: info.mtimeNs,
		ctimeNs: info.ctimeNs,
		ino: info.ino,
		dev: info.dev,
	};
}

/** The entry type of a stat's mode. */
export function typeOfMode(mode: number): EntryType {
	switch (mode & constants.S_IFMT) {
		case constants.S_IFREG:
			return "file";
		case constants.S_IFDIR:
			return "dir";
		case constants.S_IFLNK:
			return "symlink";
		case constants.S_IFIFO:
			return "fifo";
		case constants.S_IFSOCK:
			return "socket";
		case constants.S_IFCHR:
			return "chardev";
		default:
			return "blockdev";
	}
}
