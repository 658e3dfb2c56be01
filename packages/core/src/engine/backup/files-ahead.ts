import { type CatalogCache, isRecord } from "../../catalog/catalog-cache.js";
import { Semaphore } from "../../host/semaphore.js";
import type { Source, SourceEntry } from "../../source/source.js";
import { folderStateKey, sameFile, stateOf } from "../file-state.js";
import type { FileSaver, StoredFile } from "./file-saver.js";
import type { FolderStateStore } from "./folder-state-store.js";

/**
 * Files at least this large are remembered for the next run to read ahead: below it, a read
 * is over within a few milliseconds of the walk reaching it.
 */
const LARGE_BYTES = 8 * 1024 * 1024;
/** The largest files a run remembers. */
const REMEMBERED = 16;
/** Files read ahead at once: the walk's own reads keep the file saver's other places. */
const AT_ONCE = 2;

/** What a run remembers of its largest files: root, and path below it as base64 of its bytes. */
interface LargeFiles {
	v: 1;
	f: [root: string, relPath: string][];
}

/** A file read ahead of the walk: the entry it was read as, and its blob IDs once known. */
interface ReadAhead {
	readonly entry: SourceEntry;
	/** Unset until the read has its place: the walk that lists the file before then reads it itself. */
	read: Promise<StoredFile> | undefined;
	/** The walk listed the file: a read not begun by then is not begun. */
	taken: boolean;
	/** Settles when the read ended, or was not begun. */
	finished: Promise<void>;
}

/**
 * Reads the last run's large files that changed since, while the walk lists everything else.
 * A walk goes in name order, and the few large files of a set often sort late (a `large/` or
 * `vm/` folder): a backup of a set with little changed then ends with the workers cutting
 * them while the walk has nothing left to do. Read ahead, their cutting overlaps the listing.
 *
 * What was read ahead is the walk's only when it lists the same file: same inode, size, mtime
 * and ctime as the entry read (`take`). Any other is read again as listed, and what was read
 * ahead is left unused: its blobs are stored all the same, as those of a read that found its
 * file changing are.
 */
export class FilesAhead {
	readonly #reads = new Map<string, ReadAhead>();
	readonly #places = new Semaphore(AT_ONCE);
	/** This run's largest files, largest first, for the next run. */
	readonly #largest: { root: string; relPath: Buffer; size: number }[] = [];
	#remembered: LargeFiles | undefined;
	#started: Promise<void> = Promise.resolve();
	/** While the remembered files are looked up: files the walk reaches meanwhile are its own to read. */
	#looking = false;
	readonly #passed = new Set<string>();
	/** Reads begun ahead and not yet ended. */
	#active = 0;

	constructor(
		private readonly cache: CatalogCache,
		private readonly repositoryId: string,
		private readonly setName: string,
	) {}

	/**
	 * Looks up the files the last run remembered and starts reading those that changed since
	 * (with `reread`, every one), in the background: the walk does not wait for it.
	 */
	start(sources: readonly Source[], states: FolderStateStore, files: FileSaver, reread: boolean): void {
		this.#looking = true;
		this.#started = this.#start(sources, states, files, reread)
			.catch(() => undefined)
			.finally(() => {
				this.#looking = false;
				this.#passed.clear();
			});
	}

	async #start(sources: readonly Source[], states: FolderStateStore, files: FileSaver, reread: boolean): Promise<void> {
		const remembered = await this.cache.get(this.#key(), isLargeFiles);
		this.#remembered = remembered;
		if (!remembered) return;
		const found = await Promise.all(
			remembered.f.map(async ([root, relText]) => {
				const source = sources.find((s) => s.roots.includes(root));
				return source?.lookup?.(root, Buffer.from(relText, "base64")).catch(() => undefined);
			}),
		);
		const listed = found.filter((entry): entry is SourceEntry => entry?.type === "file" && entry.read !== undefined);
		const folders = await states.recall(
			listed.map((entry) => folderStateKey(this.repositoryId, this.setName, entry.root, parentOf(entry.relPath))),
		);
		listed.forEach((entry, i) => {
			const name = entry.relPath.subarray(entry.relPath.lastIndexOf(SLASH) + 1).toString("latin1");
			const state = stateOf(folders[i], name);
			// A file the catalog has no state of may be unchanged in the parent snapshot: not read on a guess.
			if (state === undefined) return;
			const scanned = { mtime: entry.mtimeNs.toString(), ctime: entry.ctimeNs.toString(), inode: entry.inode.toString() };
			if (!reread && sameFile(state, entry.size, scanned)) return;
			// Listed by the walk while this looked: the walk reads it.
			if (this.#passed.has(keyOf(entry))) return;
			const ahead: ReadAhead = { entry, read: undefined, taken: false, finished: Promise.resolve() };
			ahead.finished = this.#places.acquire().then(async () => {
				try {
					if (ahead.taken) return;
					const read = files.save(entry).then(({ done }) => done);
					ahead.read = read;
					this.#active++;
					await read.catch(() => undefined);
					this.#active--;
				} finally {
					this.#places.release();
				}
			});
			this.#reads.set(keyOf(entry), ahead);
		});
	}

	/** Whether a read begun ahead is going on: the walk then lets the event loop turn, for its callbacks. */
	get reading(): boolean {
		return this.#active > 0;
	}

	/**
	 * The file the walk lists, if it was read ahead as this very file: its blob IDs (or its
	 * read's failure) once known. Undefined when the walk is to read it itself.
	 */
	take(entry: SourceEntry): Promise<StoredFile> | undefined {
		if (this.#looking) this.#passed.add(keyOf(entry));
		if (this.#reads.size === 0) return undefined;
		const ahead = this.#reads.get(keyOf(entry));
		if (!ahead || ahead.taken) return undefined;
		ahead.taken = true;
		const read = ahead.entry;
		const same =
			read.size === entry.size && read.mtimeNs === entry.mtimeNs && read.ctimeNs === entry.ctimeNs && read.inode === entry.inode;
		return same ? ahead.read : undefined;
	}

	/** Every file the walk lists: the largest are remembered for the next run. */
	note(entry: SourceEntry): void {
		if (entry.size < LARGE_BYTES || entry.relPath.length === 0) return;
		const largest = this.#largest;
		if (largest.length === REMEMBERED && (largest.at(-1)?.size ?? 0) >= entry.size) return;
		let at = largest.length;
		while (at > 0 && (largest[at - 1]?.size ?? 0) < entry.size) at--;
		largest.splice(at, 0, { root: entry.root, relPath: entry.relPath, size: entry.size });
		if (largest.length > REMEMBERED) largest.pop();
	}

	/** Waits for every read started ahead, used or not: none is left running when the run ends. */
	async settle(): Promise<void> {
		await this.#started;
		const reads = [...this.#reads.values()];
		this.#reads.clear();
		for (const ahead of reads) ahead.taken = true;
		await Promise.all(reads.map((ahead) => ahead.finished));
	}

	/** Writes this run's largest files for the next run, when they are not those it found. */
	async remember(): Promise<void> {
		const value: LargeFiles = { v: 1, f: this.#largest.map(({ root, relPath }) => [root, relPath.toString("base64")]) };
		const before = this.#remembered?.f ?? [];
		const same =
			before.length === value.f.length && before.every(([root, rel], i) => value.f[i]?.[0] === root && value.f[i]?.[1] === rel);
		if (same) return;
		await this.cache.set(this.#key(), value);
	}

	#key(): string {
		return `large-files:${this.repositoryId}:${this.setName}`;
	}
}

const SLASH = 0x2f;

function parentOf(relPath: Buffer): Buffer {
	const slash = relPath.lastIndexOf(SLASH);
	return slash < 0 ? Buffer.alloc(0) : relPath.subarray(0, slash);
}

function keyOf(entry: SourceEntry): string {
	return `${entry.root}\0${entry.relPath.toString("latin1")}`;
}

function isLargeFiles(value: unknown): value is LargeFiles {
	return (
		isRecord(value) &&
		value.v === 1 &&
		Array.isArray(value.f) &&
		value.f.every(
			(file) => Array.isArray(file) && file.length === 2 && typeof file[0] === "string" && typeof file[1] === "string",
		)
	);
}
