import {
	type BigIntStats,
	close,
	closeSync,
	constants,
	fstat,
	fstatSync,
	lstatSync,
	open,
	openSync,
	read,
	readSync,
	type Stats,
	statSync,
} from "node:fs";
import { access, readlink, stat as statAsync } from "node:fs/promises";
import { resolve } from "node:path";
import { HoldfastError, type Logger, type ScanOptions, type Source, type SourceEntry } from "@holdfast/core";
import { call, statOf } from "./adaptive-stat.js";
import { type EntryStat, entryStat } from "./entry-stat.js";
import { FolderLister } from "./folder-lister.js";
import { type FolderListing, FolderReader, isFailure } from "./folder-reader.js";
import type { AheadFolder } from "./lister-protocol.js";
import { SpareCore } from "./spare-core.js";
import { identityOf, WalkFilter, type WalkRules } from "./walk-filter.js";

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

/** How the walk reads folders; the defaults are the plugin's, tests change them. */
export interface WalkTuning {
	/** Entries listed on the walk's own thread before the lister's worker starts. */
	readonly listerAfter?: number;
	/** The lister's worker script (list-worker.js); none found, every folder is read on the walk's thread. */
	readonly listerScript?: string;
	/** Wait for the lister's worker once started, rather than walk on while it starts: a test's walk then knows where it hands over. */
	readonly awaitLister?: boolean;
	/** Cores the process kept busy since last asked (spare-core.ts measures it); undefined when too soon to tell. */
	readonly busyCores?: () => number | undefined;
	/** The machine's cores, as the lister's room is judged. */
	readonly cores?: number;
}

/** Where the folders of the last scan were listed: on the walk's thread, or ahead of it by the lister. */
export interface ListingCounts {
	here: number;
	ahead: number;
}

/** A listed entry: its path below the root, its absolute path, and its stat. */
interface Listed {
	readonly rel: Buffer;
	readonly abs: Buffer;
	readonly info: EntryStat;
}

/** A folder the walk is in: its entries, the next one to take, and its identity. */
interface OpenFolder {
	readonly children: (Listed | undefined)[];
	at: number;
	readonly identity: string;
}

const READ_SIZE = 4 * 1024 * 1024;
/**
 * Files up to this size are read with direct system calls on the calling thread: four quick
 * calls cost less than four trips through the libuv pool (each a wake-up of a pool thread and
 * of the main loop), which dominate a backup of many tiny files.
 */
const DIRECT_READ = 64 * 1024;
const SLASH = Buffer.from("/");
/**
 * The lister's worker starts once the walk has listed this many entries: a small tree is
 * walked before a thread would be up, and does not pay for one (its start and its memory).
 */
const LISTER_AFTER = 2000;

/**
 * Walks folders depth-first, each folder's entries sorted by name bytes, names kept as raw
 * bytes (any name the platform allows round-trips). One folder's listing is in memory at a
 * time per level of depth, and those a lister has made ahead of the walk (folder-lister.ts);
 * file content is opened only when the engine reads it.
 */
export class FsSource implements Source {
	readonly roots: string[];
	readonly #reader: FolderReader;
	readonly #buffers = new ReadBuffers();
	/** The walk's rules as `lookup` applies them to one file, made when first asked. */
	#lookupFilter: WalkFilter | undefined;
	/** Of the last scan. */
	readonly listings: ListingCounts = { here: 0, ahead: 0 };

	constructor(
		private readonly options: FsSourceOptions,
		configDir = process.cwd(),
		private readonly leaveOut: readonly string[] = [],
		private readonly logger?: Logger,
		private readonly tuning: WalkTuning = {},
	) {
		this.roots = (Array.isArray(options.path) ? options.path : [options.path]).map((p) => resolve(configDir, p));
		this.#reader = new FolderReader({
			follow: options.followSymlinks ?? false,
			excludeCaches: options.excludeCaches ?? true,
			statConcurrency: options.statConcurrency ?? 16,
		});
	}

	async *scan(scanOptions: ScanOptions): AsyncIterable<SourceEntry> {
		// Every root is checked before anything is read: a missing root is a failed run, not an empty snapshot.
		for (const root of this.roots) await this.#checkRoot(root);
		// Known by identity, not by name: a repository reached through a link or a bind mount is the same folder.
		const leftOut: string[] = [];
		for (const path of this.leaveOut) {
			const info = await statAsync(path, { bigint: true }).catch(() => undefined);
			if (info?.isDirectory()) leftOut.push(identityOf(info));
		}
		const rules: WalkRules = {
			exclude: this.options.exclude ?? [],
			excludeLargerThan: this.options.excludeLargerThan,
			oneFileSystem: this.options.oneFileSystem ?? false,
			leftOut,
		};
		const filter = new WalkFilter(rules);
		const lister = new FolderLister(this.#reader, this.tuning.listerScript);
		const listerAfter = this.tuning.listerAfter ?? LISTER_AFTER;
		const spare = new SpareCore(this.tuning.cores);
		const busyCores = this.tuning.busyCores ?? (() => spare.busy());
		/** Entries listed on this thread since the lister was last considered. */
		let listedHere = 0;
		// Started where a core is to spare. Once started it runs on: with it, a walk with little to
		// read kept the process 1.8 cores busy, a first backup without it 1.7–1.9 — too close to tell apart.
		const considerLister = async (listed: number) => {
			if (lister.streaming || lister.stopped || (listedHere += listed) < listerAfter) return;
			const busy = busyCores();
			if (busy === undefined) return;
			listedHere = 0;
			if (!spare.roomToStart(busy)) return;
			lister.start();
			if (this.tuning.awaitLister) await lister.up();
		};
		this.listings.here = 0;
		this.listings.ahead = 0;
		try {
			// One generator for every root and everything below it: each entry passes through one,
			// not one per generator delegated to, and each of those cost a promise and a result object.
			for (const root of this.roots) {
				const rootStat = await this.#rootStat(root);
				const rootAbs = Buffer.from(root);
				const rootEntry = await this.#entry(root, Buffer.alloc(0), rootAbs, rootStat);
				yield rootEntry;
				if (rootEntry.type !== "dir") continue;
				const rootDevice = rootStat.dev;
				const rootIdentity = identityOf(rootStat);
				const ancestors = new Set<string>([rootIdentity]);
				const first = await this.#list(root, rootAbs, Buffer.alloc(0), scanOptions);
				if (!first) continue;
				this.listings.here++;
				await considerLister(first.length);
				// The whole tree below the root, its open folders on a stack.
				const stack: OpenFolder[] = [{ children: first, at: 0, identity: "" }];
				while (stack.length > 0) {
					if (!lister.streaming && lister.ready) lister.handOver({ rules, rootDevice, rootIdentity, open: aheadOf(stack) });
					const folder = stack.at(-1) as OpenFolder;
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
					const isDir = info.type === "dir";
					// The lister's worker decides the same way (list-worker.ts), to list what the walk enters.
					const passedBy = filter.passedBy(rel, info, rootDevice);
					if (passedBy === "left-out") this.logger?.info(`${show(root, rel)}: left out, it is this set's own repository`);
					if (passedBy) continue;
					const identity = isDir ? identityOf(info) : "";
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
					const streamed = lister.streaming ? lister.take(rel) : undefined;
					const children = await this.#list(root, abs, rel, scanOptions, streamed);
					if (!children) continue;
					if (lister.streaming) this.listings.ahead++;
					else this.listings.here++;
					await considerLister(children.length);
					ancestors.add(identity);
					stack.push({ children, at: 0, identity });
				}
				lister.endWalk();
			}
		} finally {
			lister.close();
		}
	}

	/**
	 * A file as a scan would list it now: the walk's rules for a file's own path (its excludes,
	 * those of the folders above it, its size limit, its file system). A folder on the way that
	 * a scan would pass by for another reason (a cache folder, a link not followed) is not
	 * looked for: the engine uses what it reads only when the walk lists the same file.
	 */
	async lookup(root: string, relPath: Buffer): Promise<SourceEntry | undefined> {
		if (relPath.length === 0 || !this.roots.includes(root)) return undefined;
		this.#lookupFilter ??= new WalkFilter({
			exclude: this.options.exclude ?? [],
			excludeLargerThan: this.options.excludeLargerThan,
			oneFileSystem: false,
			leftOut: [],
		});
		// Excluded by its path before anything is asked of the file system: an excluded folder may be a mount that hangs.
		if (this.#lookupFilter.excludes(relPath, false)) return undefined;
		const abs = Buffer.concat([Buffer.from(root), SLASH, relPath]);
		const follow = this.options.followSymlinks ?? false;
		const now = await statOf(abs, follow).catch(() => undefined);
		if (!now?.isFile()) return undefined;
		const info = entryStat(now);
		if (this.#lookupFilter.passedBy(relPath, info, info.dev) !== undefined) return undefined;
		if (this.options.oneFileSystem) {
			const rootInfo = await statOf(root, true).catch(() => undefined);
			if (rootInfo?.dev !== info.dev) return undefined;
		}
		return this.#fileEntry(root, relPath, abs, info);
	}

	/** Throws, naming the root and the cause, when a root is missing or cannot be read. */
	async #checkRoot(root: string): Promise<void> {
		try {
			const info = await statAsync(root, { bigint: true });
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
	async #rootStat(root: string): Promise<EntryStat> {
		try {
			return entryStat(await statOf(root, true));
		} catch (error) {
			throw rootError(root, error);
		}
	}

	/**
	 * A folder's entries, sorted by name bytes, each with its stat: the lister's listing when it
	 * has the folder's, else read now. Undefined when it cannot be listed (or the scan is aborted).
	 */
	async #list(
		root: string,
		dirAbs: Buffer,
		dirRel: Buffer,
		scanOptions: ScanOptions,
		streamed?: Promise<FolderListing | undefined>,
	): Promise<(Listed | undefined)[] | undefined> {
		if (!streamed && scanOptions.signal.aborted) return undefined;
		let folder: FolderListing;
		try {
			folder = (await streamed) ?? (await this.#reader.read(dirAbs));
			if (scanOptions.signal.aborted) return undefined;
		} catch (error) {
			if (dirRel.length === 0) throw rootError(root, error);
			scanOptions.onSkip({ path: show(root, dirRel), reason: `cannot list folder: ${describe(error)}` });
			return undefined;
		}
		const { names, stats } = folder;
		const children: (Listed | undefined)[] = new Array(names.length);
		for (let i = 0; i < names.length; i++) {
			const name = names[i] as Buffer;
			const rel = dirRel.length === 0 ? name : Buffer.concat([dirRel, SLASH, name]);
			const info = stats[i] as (typeof stats)[number];
			if (isFailure(info)) {
				scanOptions.onSkip({ path: show(root, rel), reason: `vanished or unreadable: ${describe(info)}` });
				children[i] = undefined;
			} else children[i] = { rel, abs: Buffer.concat([dirAbs, SLASH, name]), info };
		}
		return children;
	}

	/** The entry of a listed path: at once, or a promise for a link (its target is read). */
	#entry(root: string, rel: Buffer, abs: Buffer, info: EntryStat): SourceEntry | Promise<SourceEntry> {
		const { type } = info;
		if (type === "file") return this.#fileEntry(root, rel, abs, info);
		const entry: SourceEntry = {
			root,
			relPath: rel,
			type,
			size: 0,
			mode: info.mode,
			uid: info.uid,
			gid: info.gid,
			mtimeNs: info.mtimeNs,
			ctimeNs: info.ctimeNs,
			inode: info.ino,
			device: info.dev,
		};
		if (type !== "symlink") return entry;
		return readlink(abs, { encoding: "buffer" }).then((linkTarget) => ({ ...entry, linkTarget }));
	}

	/** One object per file, its methods sharing the stat of the listing. */
	#fileEntry(root: string, rel: Buffer, abs: Buffer, info: EntryStat): SourceEntry {
		const follow = this.options.followSymlinks ?? false;
		const buffers = this.#buffers;
		// The closures keep the few values they use, not the stat.
		const size = info.size;
		const inode = info.ino;
		let seenSize = info.size;
		let seenMtimeNs = info.mtimeNs;
		// The stat's fields written out, not spread: an entry per file, in one shape from the start.
		return {
			root,
			relPath: rel,
			type: "file",
			size,
			mode: info.mode,
			uid: info.uid,
			gid: info.gid,
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
				const nowSize = Number(now.size);
				const same = nowSize === seenSize && now.mtimeNs === seenMtimeNs;
				// The next attempt compares against what it will read now.
				seenSize = nowSize;
				seenMtimeNs = now.mtimeNs;
				return same;
			},
			relist: async () => {
				const now = await statOf(abs, follow).catch(() => undefined);
				if (!now?.isFile()) return undefined;
				const limit = this.options.excludeLargerThan;
				return limit !== undefined && now.size > BigInt(limit) ? undefined : this.#fileEntry(root, rel, abs, entryStat(now));
			},
		};
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

/** The folders still to be entered in each open folder, for the lister to list ahead. */
function aheadOf(stack: readonly OpenFolder[]): { identity: string; folders: AheadFolder[] }[] {
	return stack.map(({ children, at, identity }) => {
		const folders: AheadFolder[] = [];
		for (let i = at; i < children.length; i++) {
			const child = children[i];
			// Copies of their own: a Buffer cut from Node's pool would send the whole pool with it.
			if (child?.info.type === "dir")
				folders.push({ rel: new Uint8Array(child.rel), abs: new Uint8Array(child.abs), info: child.info });
		}
		return { identity, folders };
	});
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
