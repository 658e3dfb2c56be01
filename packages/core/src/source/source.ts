/**
 * The source contract: what a source plugin (filesystem, database dump, NAS) turns its data
 * into. Entries stream in depth-first order, each directory's children sorted by name bytes,
 * so the engine can close each tree as soon as the walk leaves it and memory stays bounded.
 */
export type EntryType = "file" | "dir" | "symlink" | "fifo" | "socket" | "chardev" | "blockdev";

export interface SourceEntry {
	/** Which configured root this entry is under (its display name in the snapshot). */
	readonly root: string;
	/** Path below the root, `/`-separated, as raw bytes: names need not be UTF-8. Empty for the root. */
	readonly relPath: Buffer;
	readonly type: EntryType;
	/** Bytes; a file's may be 0 when unknown until read (a command's output): the snapshot records what was read. */
	readonly size: number;
	readonly mode: number;
	readonly uid: number;
	readonly gid: number;
	readonly mtimeNs: bigint;
	readonly ctimeNs: bigint;
	readonly inode: bigint;
	readonly device: bigint;
	readonly linkTarget?: Buffer;
	/**
	 * Files only: opens the content. Never called for special files. A chunk it yields stays
	 * valid only until the next one is requested (or the iteration ends): a source may read
	 * the next chunk into the same memory, and a consumer that keeps bytes longer copies them.
	 * A consumer may offer memory for the next chunk as the argument of `next()`: a source
	 * that can read there yields a view of it from its start (then nothing is copied); one
	 * that cannot ignores the offer.
	 */
	read?(): AsyncIterable<Uint8Array>;
	/** Files only: true when size and mtime still match the entry (the file did not change while read). */
	unchangedSinceScan?(): Promise<boolean>;
	/**
	 * Files only, optional: the file at this entry's path as the source lists it now, or
	 * undefined when no regular file the scan would take is there. Asked when a read finds
	 * another file than the one listed (`read` fails with code `ECHANGED`): an editor saves by
	 * writing a new file and renaming it over the old. The engine then backs up the entry this
	 * returns, once, instead of skipping the file. Without it such a file is skipped with a
	 * warning and the next run takes it.
	 */
	relist?(): Promise<SourceEntry | undefined>;
	/**
	 * Files only, optional: where the file lies on this machine, for the engine to read it
	 * itself. A small file (below the chunker's minimum) is then read on the engine's worker
	 * threads, many in one trip, with no promise and no plugin call per file: the path is
	 * opened (a final symlink followed only with `followLinks`), checked with fstat to be a
	 * regular file with the entry's `inode`, `size`, `mtimeNs` and `ctimeNs`, read, and checked
	 * again. One that no longer matches is read through `read` (which retries); one that cannot
	 * be opened, or is another file now, is skipped with a warning, as a failing `read` would
	 * be. Used only while no `scan` tap is set: a tap may wrap `read`, and every byte then goes
	 * through it.
	 */
	readonly local?: LocalFile;
}

/** A file on this machine's file systems, as `SourceEntry.local` names it. */
export interface LocalFile {
	/** Absolute path, as raw bytes. */
	readonly path: Buffer;
	/** Whether a symlink at `path` is followed: the entry then describes the link's target. */
	readonly followLinks: boolean;
}

export interface SourceWarning {
	readonly path: string;
	readonly reason: string;
}

export interface ScanOptions {
	readonly signal: AbortSignal;
	/** Called for every entry skipped; a skipped entry makes the run "partial". */
	readonly onSkip: (warning: SourceWarning) => void;
}

export interface Source {
	/** The roots this source will emit, in order (each becomes a top-level entry of the snapshot). */
	readonly roots: readonly string[];
	scan(options: ScanOptions): AsyncIterable<SourceEntry>;
	/**
	 * Optional: the file at `relPath` below `root` as a scan would list it now, or undefined
	 * when a scan would take no regular file there (gone, another type, excluded). Before its
	 * walk, the engine asks it for the largest files of the set's last run and reads those that
	 * changed while the walk lists everything else, so their reading no longer waits for the
	 * walk to reach them. What it read is used only when the walk then lists the same file
	 * (inode and device alike), recorded with the size and times it was read at; another file
	 * at the path is read again as listed. Not asked while a `scan` tap is set: the tap may
	 * wrap `read`. A path an exclude matches should be refused before the file system is asked.
	 */
	lookup?(root: string, relPath: Buffer): Promise<SourceEntry | undefined>;
}

/** Display form of an entry's path: invalid UTF-8 bytes are shown escaped, never dropped. */
export function displayPath(entry: Pick<SourceEntry, "root" | "relPath">): string {
	const rel = entry.relPath.length === 0 ? "" : `/${entry.relPath.toString("utf8")}`;
	return `${entry.root}${rel}`;
}
