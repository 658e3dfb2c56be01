import { readdir, readFile } from "node:fs/promises";
import pLimit from "p-limit";
import { AdaptiveStat } from "./adaptive-stat.js";
import { type EntryStat, typeOfMode } from "./entry-stat.js";

export interface ReadOptions {
	/** Stat what links point to instead of the links. */
	readonly follow: boolean;
	/** List only the tag of a folder tagged with a valid CACHEDIR.TAG. */
	readonly excludeCaches: boolean;
	/** Stats in parallel once calls are slow and go through the libuv pool. */
	readonly statConcurrency: number;
}

/** Why an entry has no stat: it vanished since it was listed, or cannot be read. */
export type StatFailure = Error & { code?: string };

/** A folder's names, sorted by bytes, and each one's stat or why it has none. */
export interface FolderListing {
	readonly names: Buffer[];
	readonly stats: (EntryStat | StatFailure)[];
}

const CACHEDIR_SIGNATURE = "Signature: 8a477f597d28d172789f06886806bc55";
const SLASH = Buffer.from("/");

/**
 * Lists folders and stats their entries, on whichever thread holds it: the walk's, or the
 * lister's worker (folder-lister.ts), which reads folders ahead of the walk.
 */
export class FolderReader {
	readonly #stats = new AdaptiveStat();
	readonly #limit: ReturnType<typeof pLimit>;

	constructor(readonly options: ReadOptions) {
		this.#limit = pLimit(options.statConcurrency);
	}

	/** Throws when the folder cannot be listed; an entry that cannot be stat'ed has its failure in `stats`. */
	async read(dir: Buffer): Promise<FolderListing> {
		// Here while the metadata is cached, through the pool once calls are slow.
		let names = this.#stats.pooled ? await readdir(dir, { encoding: "buffer" }) : this.#stats.listNow(dir);
		names.sort(Buffer.compare);
		if (this.options.excludeCaches && (await isTaggedCache(dir, names))) {
			names = names.filter((n) => n.toString() === "CACHEDIR.TAG");
		}
		const { follow } = this.options;
		const path = (name: Buffer) => Buffer.concat([dir, SLASH, name]);
		// Quick stats are made in a plain loop: a promise and a queue slot per entry cost more than the call.
		const stats = this.#stats.pooled
			? await Promise.all(names.map((name) => this.#limit(() => this.#stats.stat(path(name), follow).catch(asFailure))))
			: names.map((name) => {
					try {
						return this.#stats.statNow(path(name), follow);
					} catch (error) {
						return asFailure(error);
					}
				});
		return { names, stats };
	}
}

export function isFailure(stat: EntryStat | StatFailure): stat is StatFailure {
	return stat instanceof Error;
}

function asFailure(error: unknown): StatFailure {
	return error instanceof Error ? error : new Error(String(error));
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

/**
 * A listing as the lister's worker posts it: typed arrays moved, not copied, and no object
 * per entry for the structured clone to walk.
 */
export interface ListingMessage {
	/** The walk it belongs to. */
	readonly walk: number;
	/** The folder's path below the root. */
	readonly rel?: Uint8Array;
	/** The walk has no more folders: nothing else is set then. */
	readonly end?: boolean;
	/** Why the folder could not be listed; nothing else is set then. */
	readonly error?: { readonly code?: string; readonly message: string };
	/** The names, one after another; name i ends at `ends[i]`. */
	readonly names?: Uint8Array;
	readonly ends?: Uint32Array;
	/** Mode, uid, gid and size of each entry. */
	readonly numbers?: Float64Array;
	/** Modification and change times of each entry, in ns. */
	readonly times?: BigInt64Array;
	/** Inode and device of each entry. */
	readonly identities?: BigUint64Array;
	/** Entries without a stat, by position. */
	readonly failures?: { readonly at: number; readonly code?: string; readonly message: string }[];
}

/** The message for `listing`, and what it moves to the receiving thread. */
export function encodeListing(
	walk: number,
	rel: Uint8Array,
	listing: FolderListing,
): { message: ListingMessage; transfer: ArrayBuffer[] } {
	const { names, stats } = listing;
	const count = names.length;
	const joined = Buffer.concat(names);
	const bytes = new Uint8Array(joined.length);
	bytes.set(joined);
	const ends = new Uint32Array(count);
	const numbers = new Float64Array(count * 4);
	const times = new BigInt64Array(count * 2);
	const identities = new BigUint64Array(count * 2);
	const failures: { at: number; code?: string; message: string }[] = [];
	let end = 0;
	for (let i = 0; i < count; i++) {
		end += (names[i] as Buffer).length;
		ends[i] = end;
		const stat = stats[i] as EntryStat | StatFailure;
		if (isFailure(stat)) {
			failures.push({ at: i, code: stat.code, message: stat.message });
			continue;
		}
		numbers[4 * i] = stat.mode;
		numbers[4 * i + 1] = stat.uid;
		numbers[4 * i + 2] = stat.gid;
		numbers[4 * i + 3] = stat.size;
		times[2 * i] = stat.mtimeNs;
		times[2 * i + 1] = stat.ctimeNs;
		identities[2 * i] = stat.ino;
		identities[2 * i + 1] = stat.dev;
	}
	return {
		message: { walk, rel, names: bytes, ends, numbers, times, identities, failures },
		transfer: [bytes.buffer, ends.buffer, numbers.buffer, times.buffer, identities.buffer],
	};
}

/** The listing a message carries; throws the folder's error when it could not be listed. */
export function decodeListing(message: ListingMessage): FolderListing {
	if (message.error) throw Object.assign(new Error(message.error.message), { code: message.error.code });
	const { ends, numbers, times, identities } = message as Required<ListingMessage>;
	const bytes = Buffer.from(message.names?.buffer as ArrayBuffer, message.names?.byteOffset, message.names?.length);
	const names: Buffer[] = new Array(ends.length);
	const stats: (EntryStat | StatFailure)[] = new Array(ends.length);
	let start = 0;
	for (let i = 0; i < ends.length; i++) {
		const end = ends[i] as number;
		names[i] = bytes.subarray(start, end);
		start = end;
		const mode = numbers[4 * i] as number;
		stats[i] = {
			type: typeOfMode(mode),
			mode,
			uid: numbers[4 * i + 1] as number,
			gid: numbers[4 * i + 2] as number,
			size: numbers[4 * i + 3] as number,
			mtimeNs: times[2 * i] as bigint,
			ctimeNs: times[2 * i + 1] as bigint,
			ino: identities[2 * i] as bigint,
			dev: identities[2 * i + 1] as bigint,
		};
	}
	for (const { at, code, message: text } of message.failures ?? []) stats[at] = Object.assign(new Error(text), { code });
	return { names, stats };
}
