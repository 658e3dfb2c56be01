import { type CatalogCache, isRecord } from "../../catalog/catalog-cache.js";
import { HoldfastError } from "../../host/errors.js";
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
/** Files read ahead at once, at most: the walk's own reads keep the file saver's other places. */
const AT_MOST_AT_ONCE = 2;

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

/** A read ahead the walk takes: its blob IDs, and the entry they are the content of. */
export interface TakenAhead {
	readonly read: Promise<StoredFile>;
	/**
	 * The file as it was looked up and read: the walk's own entry when it lists the very same
	 * file, else the same file (inode and device) as it was before it last changed.
	 */
	readonly entry: SourceEntry;
}

/**
 * Reads the last run's large files that changed since, while the walk lists everything else.
 * A walk goes in name order, and the few large files of a set often sort late (a `large/` or
 * `vm/` folder): a backup of a set with little changed then ends with the workers cutting
 * them while the walk has nothing left to do. Read ahead, their cutting overlaps the listing.
 *
 * What was read ahead is the walk's only for the same file: same inode and device (`take`).
 * One that changed again since it was looked up (a database, a log) is taken as it was read,
 * with the size and times it had then, so that the next run reads it again; reading it twice
 * in a run would store both. Another file at the path is read as listed, and what was read
 * ahead goes unused: its blobs are stored all the same, as those of a read that found its
 * file changing are.
 */
export class FilesAhead {
	/** Every read begun or waiting for its place, by path: one per path. */
	readonly #reads = new Map<string, ReadAhead>();
	readonly #places: Semaphore;
	/** This run's largest files, largest first, for the next run. */
	readonly #largest: { root: string; relPath: Buffer; size: number }[] = [];
	#remembered: LargeFiles | undefined;
	#began = false;
	#started: Promise<void> = Promise.resolve();
	/** While the remembered files are looked up: files the walk reaches meanwhile are its own to read. */
	#looking = false;
	readonly #passed = new Set<string>();
	/** Reads begun ahead and not yet ended. */
	#active = 0;
	/** The run failed: reads ahead stop at their next chunk. */
	#stopped = false;

	constructor(
		private readonly cache: CatalogCache,
		private readonly repositoryId: string,
		private readonly setName: string,
		/** The file saver's places for reads: the walk keeps at least one. */
		fileConcurrency: number,
	) {
		this.#places = new Semaphore(Math.max(1, Math.min(AT_MOST_AT_ONCE, fileConcurrency - 1)));
	}

	/**
	 * Looks up the files the last run remembered and starts reading those that changed since
	 * (with `reread`, every one), in the background: the walk does not wait for it.
	 */
	start(sources: readonly Source[], states: FolderStateStore, files: FileSaver, reread: boolean): void {
		this.#began = true;
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
			const key = keyOf(entry);
			// Listed by the walk while this looked (it reads it), or named twice.
			if (this.#passed.has(key) || this.#reads.has(key)) return;
			const name = entry.relPath.subarray(entry.relPath.lastIndexOf(SLASH) + 1).toString("latin1");
			const state = stateOf(folders[i], name);
			// A file the catalog has no state of may be unchanged in the parent snapshot: not read on a guess.
			if (state === undefined) return;
			const scanned = { mtime: entry.mtimeNs.toString(), ctime: entry.ctimeNs.toString(), inode: entry.inode.toString() };
			if (!reread && sameFile(state, entry.size, scanned)) return;
			const ahead: ReadAhead = { entry, read: undefined, taken: false, finished: Promise.resolve() };
			const stoppable = this.#stoppable(entry);
			ahead.finished = this.#places.acquire().then(async () => {
				try {
					if (ahead.taken || this.#stopped) return;
					const read = files.save(stoppable).then(({ done }) => done);
					ahead.read = read;
					this.#active++;
					await read.catch(() => undefined);
					this.#active--;
				} finally {
					this.#places.release();
				}
			});
			this.#reads.set(key, ahead);
		});
	}

	/** Whether a read begun ahead is going on: the walk then lets the event loop turn, for its callbacks. */
	get reading(): boolean {
		return this.#active > 0;
	}

	/**
	 * The file the walk lists, if it was read ahead as the same file: its blob IDs (or its
	 * read's failure) once known, and the entry they are the content of. Undefined when the
	 * walk is to read it itself.
	 */
	take(entry: SourceEntry): TakenAhead | undefined {
		if (this.#reads.size === 0) return undefined;
		const ahead = this.#reads.get(keyOf(entry));
		if (!ahead || ahead.taken) return undefined;
		ahead.taken = true;
		const read = ahead.entry;
		if (ahead.read === undefined || read.inode !== entry.inode || read.device !== entry.device) return undefined;
		const same = read.size === entry.size && read.mtimeNs === entry.mtimeNs && read.ctimeNs === entry.ctimeNs;
		return { read: ahead.read, entry: same ? entry : read };
	}

	/** Every file the walk lists: the largest are remembered for the next run. */
	note(entry: SourceEntry): void {
		if (this.#looking) this.#passed.add(keyOf(entry));
		if (entry.size < LARGE_BYTES || entry.relPath.length === 0) return;
		const largest = this.#largest;
		if (largest.length === REMEMBERED && (largest.at(-1)?.size ?? 0) >= entry.size) return;
		// A path listed twice (a root named twice in the config) is remembered once.
		if (largest.some((file) => file.root === entry.root && file.relPath.equals(entry.relPath))) return;
		let at = largest.length;
		while (at > 0 && (largest[at - 1]?.size ?? 0) < entry.size) at--;
		largest.splice(at, 0, { root: entry.root, relPath: entry.relPath, size: entry.size });
		if (largest.length > REMEMBERED) largest.pop();
	}

	/**
	 * Waits for every read started ahead, used or not: none is left running when the run goes
	 * on or ends. A run that failed (`stop`) has them stop at their next chunk instead.
	 */
	async settle(stop = false): Promise<void> {
		if (stop) this.#stopped = true;
		await this.#started;
		const reads = [...this.#reads.values()];
		this.#reads.clear();
		for (const ahead of reads) ahead.taken = true;
		await Promise.all(reads.map((ahead) => ahead.finished));
	}

	/** Writes this run's largest files for the next run, when they are not those it found. */
	async remember(): Promise<void> {
		// Nothing is read ahead while a scan tap is set: nothing to remember for.
		if (!this.#began) return;
		const value: LargeFiles = { v: 1, f: this.#largest.map(({ root, relPath }) => [root, relPath.toString("base64")]) };
		const before = this.#remembered?.f ?? [];
		const same =
			before.length === value.f.length && before.every(([root, rel], i) => value.f[i]?.[0] === root && value.f[i]?.[1] === rel);
		if (same) return;
		await this.cache.set(this.#key(), value);
	}

	/** The entry, its content read through a check that the run has not failed meanwhile. */
	#stoppable(entry: SourceEntry): SourceEntry {
		const read = entry.read as () => AsyncIterable<Uint8Array>;
		const stopped = () => this.#stopped;
		return {
			...entry,
			read: () => {
				const chunks = read()[Symbol.asyncIterator]() as AsyncIterator<Uint8Array, unknown, Uint8Array | undefined>;
				const reading: AsyncIterableIterator<Uint8Array> = {
					[Symbol.asyncIterator]: () => reading,
					// The offer of memory to read into (see `SourceEntry.read`) goes through.
					next: (offer?: Uint8Array) =>
						stopped()
							? Promise.reject(new HoldfastError("ABORTED", "backup failed: a read ahead stopped"))
							: (chunks.next(offer) as Promise<IteratorResult<Uint8Array>>),
					return: async () => {
						await chunks.return?.();
						return { done: true, value: undefined };
					},
				};
				return reading;
			},
		};
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
