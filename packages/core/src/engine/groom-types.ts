import type { SetConfig } from "../config/config-types.js";

/** Provided by the plugin that grooms (`TOKENS.GroomSchedule`): which sets the core grooms right after each backup. */
export interface GroomSchedule {
	afterBackup(set: SetConfig): boolean;
}

/** One deletion grooming proposes; `keep` taps may veto it. */
export interface GroomCandidate {
	readonly kind: "snapshot" | "pack" | "index" | "key";
	readonly key: string;
	readonly bytes: number;
	/** For snapshots: the snapshot's ID and time. */
	readonly snapshotId?: string;
	readonly time?: Date;
}

export interface HeldObject {
	readonly key: string;
	readonly bytes: number;
	/** `marked`: condemned, deleted by a groom `graceHours` after the mark if still unneeded then. */
	readonly reason: "lock" | "snapshot" | "veto" | "grace" | "marked";
	readonly until?: Date;
	readonly detail?: string;
}

/** What grooming will do; the `groom` waterfall lets plugins compute and adjust it. */
export interface GroomPlan {
	/** Snapshots leaving the set. */
	forget: { id: string; key: string; time: string; reason: string }[];
	/** Snapshots staying, and why (in window, keep rule). */
	keep: { id: string; reason: string }[];
	/** Objects to delete, every version. */
	delete: GroomCandidate[];
	held: HeldObject[];
	/** Packs still needed that carry blobs no snapshot uses. */
	deadBytesInLivePacks: number;
	/**
	 * The grace, twice over: nothing younger is a candidate (it may belong to a running backup),
	 * and nothing is deleted sooner than this after grooming marked it (a backup that loaded the
	 * index before the mark has this long to see it). The core's default is 6 hours.
	 */
	graceHours: number;
}

export function emptyGroomPlan(): GroomPlan {
	return { forget: [], keep: [], delete: [], held: [], deadBytesInLivePacks: 0, graceHours: 6 };
}
