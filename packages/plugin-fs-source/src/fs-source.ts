import {
	type BigIntStats,
	close,
	closeSync,
	constants,
	fstat,
	fstatSync,
	lstat,
	lstatSync,
	open,
	openSync,
	read,
	readdirSync,
	readSync,
	type Stats,
	stat,
	statSync,
} from "node:fs";
import { access, readdir, readFile, readlink, stat as statAsync } from "node:fs/promises";
import { resolve } from "node:path";
import { type EntryType, HoldfastError, type Logger, type ScanOptions, type Source, type SourceEntry } from "@holdfast/core";
import ignore, { type Ignore } from "ignore";
import pLimit from "p-limit";

export interface FsSourceOptions {
	readonly path: string | string[];
	/** gitignore patterns, relative to each root. */
	readonly exclude?: string[];
	/** Skip files larger than this many bytes. */
	readonly excludeLargerThan?: number;
	/** Skip the contents of folders tagged with a valid CACHEDIR.TAG (default true). */
	readonly excludeCaches?: boolean;
	readonly oneFileSystem?: boolean;
	/** Back up what symlinks below a root point to instead of the links (default false: links are recorded). A root that is a link is always followed. */
	readonly followSymlinks?: boolean;
	/** Concurrent stat calls while listing a folder. */
	readonly statConcurrency?: number;
}

/** A listed entry: its path below the root, its absolute path, and its stat. */
interface Listed {
	readonly rel: Buffer;
	readonly abs: Buffer;
	readonly info: BigIntStats;
}

const CACHEDIR_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55";
const READ_SIZE = 4 * 1024 * 1024;
/**
 * Files up to this size are read with direct system calls on the calling thread: four quick
 * calls cost less than four trips through the libuv pool (each a wake-up of a pool thread and
 * of the main loop), which dominate a backup of many tiny files.
 */
const DIRECT_READ = 64 * 1024;
const SLASH = Buffer.from("/");

/**
 * Walks folders depth-first, each folder's entries sorted by name bytes, names kept as raw
 * bytes (any name the platform allows round-trips). One folder's listing is in memory at a
 * time per level of depth; file content is opened only when the engine reads it.
 */
export class FsSource implements Source {
	readonly roots: string[];
	readonly #exclude: ExcludeMatcher;
	readonly #limit: ReturnType<typeof pLimit>;
	readonly #stats = new AdaptiveStat();
	readonly #buffers = new ReadBuffers();

	/** Folders holdfast writes for the set (its local repository), as `dev:ino`, filled at scan. */
	#leftOut = new Map<string, string>();

	constructor(
		private readonly options: FsSourceOptions,
		configDir = process.cwd(),
		private readonly leaveOut: readonly string[] = [],
		private readonly logger?: Logger,
	) {
		this.roots = (Array.isArray(options.path) ? options.path : [options.path]).map((p) => resolve(configDir, p));
		this.#exclude = new ExcludeMatcher(options.exclude ?? []);
		this.#limit = pLimit(options.statConcurrency ?? 16);
	}

	async *scan(scanOptions: ScanOptions): AsyncIterable<SourceEntry> {
		// Every root is checked before anything is read: a missing root is a failed run, not an empty snapshot.
		for (const root of this.roots) await this.#checkRoot(root);
		// Known by identity, not by name: a repository reached through a link or a bind mount is the same folder.
		for (const path of this.leaveOut) {
			const info = await statAsync(path, { bigint: true }).catch(() => undefined);
			if (info?.isDirectory()) this.#leftOut.set(`${info.dev}:${info.ino}`, path);
		}
		// One generator for every root and everything below it: each entry passes through one,
		// not one per generator delegated to, and each of those cost a promise and a result object.
		for (const root of this.roots) {
			const rootStat = await this.#rootStat(root);
			const rootAbs = Buffer.from(root);
			const rootEntry = await this.#entry(root, Buffer.alloc(0), rootAbs, rootStat);
			yield rootEntry;
			if (rootEntry.type !== "dir") continue;
			const rootDevice = rootStat.dev;
			const ancestors = new Set<string>([`${rootStat.dev}:${rootStat.ino}`]);
			const first = await this.#list(root, rootAbs, Buffer.alloc(0), scanOptions);
			if (!first) continue;
			// The whole tree below the root, its open folders on a stack.
			const stack: { readonly children: (Listed | undefined)[]; at: number; readonly identity: string }[] = [
				{ children: first, at: 0, identity: "" },
			];
			while (stack.length > 0) {
				const folder = stack.at(-1) as (typeof stack)[number];
				if (folder.at === folder.children.length) {
					stack.pop();
					ancestors.delete(folder.identity);
					continue;
				}
				const child = folder.children[folder.at];
				// Dropped as it is passed: a folder's listing is freed as the walk goes through it.
				folder.children[folder.at++] = undefined;
				if (!child) continue;
				const { rel, abs, info } = child;
				const isDir = info.isDirectory();
				if (this.#exclude.active) {
					const relText = rel.toString("utf8");
					if (this.#exclude.ignores(isDir ? `${relText}/` : relText)) continue;
				}
				if (info.isFile() && this.options.excludeLargerThan !== undefined && info.size > BigInt(this.options.excludeLargerThan)) {
					continue;
				}
				if (isDir && this.options.oneFileSystem && info.dev !== rootDevice) continue;
				const identity = isDir ? `${info.dev}:${info.ino}` : "";
				if (isDir && this.#leftOut.has(identity)) {
					this.logger?.info(`${show(root, rel)}: left out, it is this set's own repository`);
					continue;
				}
				if (isDir && ancestors.has(identity)) {
					scanOptions.onSkip({ path: show(root, rel), reason: "symlink loop: folder is its own ancestor" });
					continue;
				}
				let entry: SourceEntry;
				try {
					// A promise only for a link, whose target is read.
					const made = this.#entry(root, rel, abs, info);
					entry = made instanceof Promise ? await made : made;
				} catch (error) {
					scanOptions.onSkip({ path: show(root, rel), reason: `vanished or unreadable: ${describe(error)}` });
					continue;
				}
				yield entry;
				if (!isDir) continue;
				const children = await this.#list(root, abs, rel, scanOptions);
				if (!children) continue;
				ancestors.add(identity);
				stack.push({ children, at: 0, identity });
			}
		}
	}

	/** Throws, naming the root and the cause, when a root is missing or cannot be read. */
	async #checkRoot(root: string): Promise<void> {
		let info: BigIntStats;
		try {
			info = await statAsync(root, { bigint: true });
			await access(root, info.isDirectory() ? constants.R_OK | constants.X_OK : constants.R_OK);
		} catch (error) {
			throw rootError(root, error);
		}
	}

	/**
	 * A root's stat. A root is what the config names, so a link there (`/srv/share ->
	 * /mnt/disk/share`) is followed: storing the link alone would back up nothing, and say it
	 * had. Links below a root are followed only with followSymlinks.
	 */
	async #rootStat(root: string): Promise<BigIntStats> {
		try {
			return await statOf(root, true);
		} catch (error) {
			throw rootError(root, error);
		}
	}

	/** A folder's entries, sorted by name bytes, each with its stat; undefined when it cannot be listed (or the scan is aborted). */
	async #list(
		root: string,
		dirAbs: Buffer,
		dirRel: Buffer,
		scanOptions: ScanOptions,
	): Promise<(Listed | undefined)[] | undefined> {
		if (scanOptions.signal.aborted) return undefined;
		let names: Buffer[];
		try {
			// As the stats are: here while the metadata is cached, through the pool once calls are slow.
			names = this.#stats.pooled ? await readdir(dirAbs, { encoding: "buffer" }) : this.#stats.listNow(dirAbs);
		} catch (error) {
			if (dirRel.length === 0) throw rootError(root, error);
			scanOptions.onSkip({ path: show(root, dirRel), reason: `cannot list folder: ${describe(error)}` });
			return undefined;
		}
		names.sort(Buffer.compare);
		if ((this.options.excludeCaches ?? true) && (await isTaggedCache(dirAbs, names))) {
			names = names.filter((n) => n.toString() === "CACHEDIR.TAG");
		}
		const follow = this.options.followSymlinks ?? false;
		const child = (name: Buffer) => {
			const rel = dirRel.length === 0 ? name : Buffer.concat([dirRel, SLASH, name]);
			return { rel, abs: Buffer.concat([dirAbs, SLASH, name]) };
		};
		const skipped = (rel: Buffer, error: unknown) => {
			scanOptions.onSkip({ path: show(root, rel), reason: `vanished or unreadable: ${describe(error)}` });
			return undefined;
		};
		// Quick stats are made in a plain loop: a promise and a queue slot per entry cost more than the call.
		return this.#stats.pooled
			? await Promise.all(
					names.map((name) =>
						this.#limit(async () => {
							const { rel, abs } = child(name);
							try {
								return { rel, abs, info: await this.#stats.stat(abs, follow) };
							} catch (error) {
								return skipped(rel, error);
							}
						}),
					),
				)
			: names.map((name) => {
					const { rel, abs } = child(name);
					try {
						return { rel, abs, info: this.#stats.statNow(abs, follow) };
					} catch (error) {
						return skipped(rel, error);
					}
				});
	}

	/** The entry of a listed path: at once, or a promise for a link (its target is read). */
	#entry(root: string, rel: Buffer, abs: Buffer, info: BigIntStats): SourceEntry | Promise<SourceEntry> {
		const type = typeOf(info);
		if (type === "file") return this.#fileEntry(root, rel, abs, info);
		const entry: SourceEntry = { root, relPath: rel, type, size: 0, ...statMetadata(info) };
		if (type !== "symlink") return entry;
		return readlink(abs, { encoding: "buffer" }).then((linkTarget) => ({ ...entry, linkTarget }));
	}

	/** One object per file, its methods sharing the stat of the listing. */
	#fileEntry(root: string, rel: Buffer, abs: Buffer, info: BigIntStats): SourceEntry {
		const follow = this.options.followSymlinks ?? false;
		const buffers = this.#buffers;
		// The closures keep the few values they use, not the stat: an entry waiting to be read (a
		// backup holds thousands) holds no BigIntStats of some hundred bytes.
		const size = Number(info.size);
		const inode = info.ino;
		let seenSize = info.size;
		let seenMtimeNs = info.mtimeNs;
		// The stat's fields written out, not spread: an entry per file, in one shape from the start.
		return {
			root,
			relPath: rel,
			type: "file",
			size,
			mode: Number(info.mode),
			uid: Number(info.uid),
			gid: Number(info.gid),
			mtimeNs: info.mtimeNs,
			ctimeNs: info.ctimeNs,
			inode,
			device: info.dev,
			read: () => readRegularFile(abs, inode, size, follow, buffers),
			local: { path: abs, followLinks: follow },
			unchangedSinceScan: async () => {
				// The file read: with links followed, the link's target.
				const now = await (size <= DIRECT_READ ? statDirect(abs, follow) : statOf(abs, follow).catch(() => undefined));
				if (!now) return false;
				const same = now.size === seenSize && now.mtimeNs === seenMtimeNs;
				// The next attempt compares against what it will read now.
				seenSize = now.size;
				seenMtimeNs = now.mtimeNs;
				return same;
			},
			relist: async () => {
				const now = await statOf(abs, follow).catch(() => undefined);
				if (!now?.isFile()) return undefined;
				const limit = this.options.excludeLargerThan;
				return limit !== undefined && now.size > BigInt(limit) ? undefined : this.#fileEntry(root, rel, abs, now);
			},
		};
	}
}

/**
 * gitignore matching by the `ignore` package, which remembers the answer for every path it
 * was asked about: over a million files that memory would grow without bound, so the matcher
 * is rebuilt (patterns are compiled in microseconds) every few thousand paths.
 */
class ExcludeMatcher {
	#matcher: Ignore;
	#asked = 0;

	constructor(private readonly patterns: string[]) {
		this.#matcher = ignore().add(patterns);
	}

	/** Whether any pattern is set: without one, no path needs to be turned into text. */
	get active(): boolean {
		return this.patterns.length > 0;
	}

	ignores(path: string): boolean {
		if (this.patterns.length === 0) return false;
		if (++this.#asked % 4096 === 0) this.#matcher = ignore().add(this.patterns);
		return this.#matcher.ignores(path);
	}
}

/** The smallest read buffer kept; sizes go up in powers of two from here to READ_SIZE. */
const MIN_BUFFER = 8 * 1024;
/** Bytes of free buffers kept: enough for the files the engine reads at once, not a pile of large ones. */
const KEEP_BYTES = 16 * 1024 * 1024;

/**
 * Read buffers, reused from file to file: a chunk is valid only until the next is asked for
 * (the source contract), so each open file holds one buffer, and a fresh one per read would
 * be garbage the collector has to chase on the thread that sets the backup's pace.
 */
class ReadBuffers {
	readonly #free = new Map<number, Buffer[]>();
	#freeBytes = 0;

	/** A buffer of at least `size` bytes (its length may be larger). */
	take(size: number): Buffer {
		let length = MIN_BUFFER;
		while (length < size) length *= 2;
		const reused = this.#free.get(length)?.pop();
		if (!reused) return Buffer.allocUnsafeSlow(length);
		this.#freeBytes -= length;
		return reused;
	}

	give(buffer: Buffer): void {
		if (this.#freeBytes + buffer.length > KEEP_BYTES) return;
		const list = this.#free.get(buffer.length) ?? [];
		list.push(buffer);
		this.#free.set(buffer.length, list);
		this.#freeBytes += buffer.length;
	}
}

/**
 * Opens without blocking and without following a link, then checks it is still the regular
 * file that was listed: a FIFO or device swapped in after listing is refused, never read.
 * File descriptors, not FileHandles: a backup opens every file once, and the handle objects
 * (and their promises) cost more main-thread time than the reads of a small file. Every
 * chunk is read into one buffer, each valid until the next is asked for — or, after the
 * first, into the memory the consumer offers with `next()`, which it then need not copy.
 */
async function* readRegularFile(
	path: Buffer,
	inode: bigint,
	size: number,
	follow: boolean,
	buffers: ReadBuffers,
): AsyncGenerator<Uint8Array, void, Uint8Array | undefined> {
	const flags = constants.O_RDONLY | constants.O_NONBLOCK | (follow ? 0 : constants.O_NOFOLLOW);
	const direct = size < DIRECT_READ;
	const fd = direct ? openSync(path, flags) : await call<number>((done) => open(path, flags, done));
	// Sized to the file (one byte more, to see the end in one read): most files are small.
	const readSize = Math.min(READ_SIZE, size + 1);
	const buffer = buffers.take(readSize);
	let into: Uint8Array = buffer;
	let wanted = readSize;
	try {
		// Checked before the first read: a FIFO swapped in would give up bytes its reader is waiting for.
		// Plain numbers: a BigIntStats per file read is garbage the collector would chase. An inode
		// past 2^53 rounds the same way on both sides.
		const info = direct ? fstatSync(fd) : await call<Stats>((done) => fstat(fd, done));
		if (!info.isFile() || info.ino !== Number(inode)) {
			throw Object.assign(new Error("replaced by another file or type since it was listed"), { code: "ECHANGED" });
		}
		for (let first = true; ; first = false) {
			const target = into;
			const bytesRead =
				direct && first
					? readSync(fd, target, 0, wanted, null)
					: await call<number>((done) => read(fd, target, 0, wanted, null, done));
			if (bytesRead === 0) return;
			if (bytesRead < wanted) {
				yield target.subarray(0, bytesRead);
				return;
			}
			const offered = yield target.subarray(0, bytesRead);
			const offeredRoom = offered?.length ?? 0;
			into = offered !== undefined && offeredRoom > 0 ? offered : buffer;
			wanted = offeredRoom > 0 ? offeredRoom : readSize;
		}
	} finally {
		buffers.give(buffer);
		if (direct) closeSync(fd);
		else close(fd, () => undefined);
	}
}

function statDirect(path: Buffer, follow: boolean): Promise<BigIntStats | undefined> {
	try {
		return Promise.resolve((follow ? statSync : lstatSync)(path, { bigint: true }));
	} catch {
		return Promise.resolve(undefined);
	}
}

/** A direct call slower than this waited for the disk (or for the CPU, on a busy machine). */
const SLOW_DIRECT_MS = 2;
/** This many slow calls among the last WINDOW mean the metadata is not cached (a cold disk, a network share). */
const SLOW_CALLS = 16;
const WINDOW = 256;
/** Then this many calls go through the libuv pool, which runs them in parallel. */
const POOLED_AFTER_SLOW = 1000;

/**
 * Folder listings and the stats of their entries. Direct calls on this thread while they are
 * quick — the common case, where the metadata is cached and a trip through the libuv pool
 * costs more than the call — and through the pool, in parallel, for a while after many are
 * slow. A listing awaited through the pool left the main thread idle while it went there and
 * back: in a no-change backup of 5,000 files in 1,360 folders, about 0.3 s of 1.7.
 */
class AdaptiveStat {
	#pooled = 0;
	#calls = 0;
	#slow = 0;

	/** Whether calls go through the pool now: else `statNow` answers on this thread. */
	get pooled(): boolean {
		return this.#pooled > 0;
	}

	stat(path: Buffer, follow: boolean): Promise<BigIntStats> {
		if (this.#pooled > 0) {
			this.#pooled--;
			return statOf(path, follow);
		}
		try {
			return Promise.resolve(this.statNow(path, follow));
		} catch (error) {
			return Promise.reject(error);
		}
	}

	/** A folder's names by a direct call, timed as a stat is. */
	listNow(path: Buffer): Buffer[] {
		return this.#timed(() => readdirSync(path, { encoding: "buffer" }));
	}

	/** A direct call, timed: many slow ones switch to the pool. */
	statNow(path: Buffer, follow: boolean): BigIntStats {
		return this.#timed(() => (follow ? statSync : lstatSync)(path, { bigint: true }));
	}

	#timed<T>(call: () => T): T {
		const started = performance.now();
		try {
			return call();
		} finally {
			this.#note(performance.now() - started > SLOW_DIRECT_MS);
		}
	}

	#note(slow: boolean): void {
		if (slow) this.#slow++;
		if (this.#slow >= SLOW_CALLS) this.#pooled = POOLED_AFTER_SLOW;
		if (++this.#calls >= WINDOW || this.#pooled > 0) {
			this.#calls = 0;
			this.#slow = 0;
		}
	}
}

function statOf(path: Buffer | string, follow: boolean): Promise<BigIntStats> {
	return call<BigIntStats>((done) => (follow ? stat : lstat)(path, { bigint: true }, done));
}

/** A Node callback call as a promise. */
function call<T>(start: (done: (error: NodeJS.ErrnoException | null, value: T) => void) => void): Promise<T> {
	return new Promise<T>((resolve, reject) => start((error, value) => (error ? reject(error) : resolve(value))));
}

async function isTaggedCache(dir: Buffer, names: Buffer[]): Promise<boolean> {
	if (!names.some((n) => n.toString() === "CACHEDIR.TAG")) return false;
	try {
		const head = await readFile(Buffer.concat([dir, SLASH, Buffer.from("CACHEDIR.TAG")]));
		return head.subarray(0, CACHEDIR_SIGNATURE.length).toString() === CACHEDIR_SIGNATURE;
	} catch {
		return false;
	}
}

function typeOf(info: BigIntStats): EntryType {
	if (info.isFile()) return "file";
	if (info.isDirectory()) return "dir";
	if (info.isSymbolicLink()) return "symlink";
	if (info.isFIFO()) return "fifo";
	if (info.isSocket()) return "socket";
	if (info.isCharacterDevice()) return "chardev";
	return "blockdev";
}

function show(root: string, rel: Buffer): string {
	return rel.length === 0 ? root : `${root}/${rel.toString("utf8")}`;
}

function rootError(root: string, error: unknown): HoldfastError {
	const code = (error as NodeJS.ErrnoException).code;
	const what =
		code === "ENOENT" || code === "ENOTDIR"
			? "does not exist"
			: code === "EACCES" || code === "EPERM"
				? "cannot be read (permission denied)"
				: `cannot be read: ${describe(error)}`;
	return new HoldfastError(
		code === "ENOENT" || code === "ENOTDIR" ? "NOT_FOUND" : "PLUGIN_FAILED",
		`source root ${root} ${what}`,
		{
			cause: error,
		},
	);
}

function describe(error: unknown): string {
	const e = error as NodeJS.ErrnoException;
	return e.code ? `${e.code}` + (e.message ? ` (${e.message.split(",")[0]})` : "") : String(error);
}

/** What every entry carries from its stat, whatever its type. */
function statMetadata(info: BigIntStats) {
	return {
		mode: Number(info.mode),
		uid: Number(info.uid),
		gid: Number(info.gid),
		mtimeNs: info.mtimeNs,
		ctimeNs: info.ctimeNs,
		inode: info.ino,
		device: info.dev,
	};
}
