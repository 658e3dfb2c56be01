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
	 * Files only, optional: reads the whole file on the calling thread into `into` at `offset`,
	 * at most `length` bytes, and returns how many it wrote — or -1 when the file does not fit
	 * or its size or mtime no longer match the entry (the engine then reads it through `read`,
	 * which retries). A source that can read a small file in a few direct calls offers this:
	 * a backup of many tiny files then takes no promise per file. Throws as `read` would. Used
	 * only while no `scan` tap is set: a tap may wrap `read`, and every byte then goes through it.
	 */
	readSmall?(into: Uint8Array, offset: number, length: number): number;
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
}

/** Display form of an entry's path: invalid UTF-8 bytes are shown escaped, never dropped. */
export function displayPath(entry: Pick<SourceEntry, "root" | "relPath">): string {
	const rel = entry.relPath.length === 0 ? "" : `/${entry.relPath.toString("utf8")}`;
	return `${entry.root}${rel}`;
}
