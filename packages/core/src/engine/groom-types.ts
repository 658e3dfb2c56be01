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
	readonly reason: "lock" | "snapshot" | "veto" | "grace";
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
}

export function emptyGroomPlan(): GroomPlan {
	return { forget: [], keep: [], delete: [], held: [], deadBytesInLivePacks: 0 };
}
