import type { MessagePort } from "node:worker_threads";
import type { EntryStat } from "./entry-stat.js";
import type { ReadOptions } from "./folder-reader.js";
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
	/** 1 when the walk wants no more listings: the worker stops where it is. */
	stop: 3,
	/** The walk the walk is in (0 between roots): the worker leaves any other where it is. */
	walk: 4,
} as const;
export const SHARED_SLOTS = 5;

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
