import type { MessagePort } from "node:worker_threads";
import { type EntryStat, typeOfMode } from "./entry-stat.js";
import { type FolderListing, isFailure, type ReadOptions, type StatFailure } from "./folder-reader.js";
import type { WalkRules } from "./walk-filter.js";

/**
 * What the walk and the lister's worker (list-worker.ts) tell each other. Requests and
 * listings go through a message port; how far the walk has got goes through shared memory,
 * which the worker reads between folders without waiting for a message.
 */

/** Slots of the shared Int32Array. */
export const SHARED = {
	/** 1 once the worker takes walks. */
	up: 0,
	/** Listings the walk has taken, of the current walk. */
	taken: 1,
	/** Entries in the listings the walk has taken, of the current walk. */
	takenEntries: 2,
	/** The walk the walk is in (0 between roots, and once the lister stops): the worker leaves any other where it is. */
	walk: 3,
} as const;
export const SHARED_SLOTS = 4;

export interface ListerData {
	readonly options: ReadOptions;
	readonly shared: Int32Array;
	/** Walks come in and listings go out here. */
	readonly port: MessagePort;
}

/** A folder the walk will enter, unless the rules pass it by. */
export interface AheadFolder {
	readonly rel: Uint8Array;
	readonly abs: Uint8Array;
	readonly info: EntryStat;
}

/**
 * The walk from where it stands: each open folder (the root's first) with its identity and
 * the folders in it still to be entered, in order. The worker lists them, and the folders
 * below them, in the order the walk will enter them.
 */
export interface WalkRequest {
	readonly walk: number;
	readonly rules: WalkRules;
	readonly rootDevice: bigint;
	/** The root's identity: a folder below that is the root itself is a loop. */
	readonly rootIdentity: string;
	readonly open: readonly { readonly identity: string; readonly folders: readonly AheadFolder[] }[];
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
