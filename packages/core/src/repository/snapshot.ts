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
	retention: { days: number; mode: LockMode };
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
}
