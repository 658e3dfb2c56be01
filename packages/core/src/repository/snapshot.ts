import type { RetentionTierPeriod } from "../config/config-types.js";
import type { LockMode } from "../destination/destination.js";

/** The object `snapshots/<id>`: one point in time of one set. Its ID is the SHA-256 of the object. */
export interface Snapshot {
	v: 1;
	set: string;
	host: string;
	time: string;
	paths: string[];
	tree: string;
	tags: string[];
	/** `days` are those of the longest tier the snapshot belongs to; `tier` names it (absent: the base). */
	retention: { days: number; mode: LockMode; tier?: RetentionTierPeriod };
	protectUntil: string;
	parent?: string;
	summary: {
		files: number;
		dirs: number;
		bytes: number;
		skipped: number;
		partial: boolean;
	};
}

export interface SnapshotRef {
	readonly id: string;
	readonly key: string;
	readonly snapshot: Snapshot;
	/** When the store first wrote the object (listings only). */
	readonly written?: Date;
}

/** An object that exists but no version of which verifies: not the same as absent. */
export interface UnreadableObject {
	readonly key: string;
	readonly id: string;
	/** One line: why it could not be read. */
	readonly reason: string;
	readonly written?: Date;
}

/** Every snapshot object of a repository: the ones read, and the ones that could not be. */
export interface SnapshotListing {
	/** Oldest first. */
	readonly refs: SnapshotRef[];
	readonly unreadable: UnreadableObject[];
}
