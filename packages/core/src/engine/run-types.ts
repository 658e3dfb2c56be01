import type { SetConfig } from "../config/config-types.js";
import type { LockMode, ObjectLock } from "../destination/destination.js";
import type { Logger } from "../host/logger.js";
import type { Repository } from "../repository/repository.js";
import type { SourceEntry } from "../source/source.js";

export type RunKind = "backup" | "restore" | "check" | "groom" | "plan" | "init" | "repair";

/** What every hook of one run sees: the set, the time the run started, and where it writes. */
export interface RunContext {
	readonly kind: RunKind;
	readonly setName: string;
	readonly set: SetConfig;
	readonly startedAt: Date;
	readonly dryRun: boolean;
	readonly repository: Repository;
	readonly logger: Logger;
	readonly signal: AbortSignal;
}

export type ChangeKind = "new" | "changed" | "unchanged" | "reincluded";

/** The diff's verdict on one entry; taps may turn "unchanged" into "reincluded". */
export interface EntryChange {
	kind: ChangeKind;
	/** Why, for the plan report (e.g. "lock of data/ab… ends 2027-01-01"). */
	reason?: string;
	/** Content blobs remembered from the last run, when the entry is unchanged. */
	knownBlobs?: readonly string[];
}

/** Where a blob we already have is stored and until when it is protected. */
export interface BlobCopy {
	readonly blobId: string;
	readonly packKey: string;
	readonly lockUntil: Date;
}

/**
 * The plan of one backup run, computed before any data moves, transformed by the `plan`
 * waterfall. The planner plugin fills it; the core enforces only what keeps the invariant.
 */
export interface RunPlan {
	/** The lock every new object gets. */
	lock: ObjectLock;
	/** The snapshot's own protect-until (time + retention). */
	protectUntil: Date;
	/** When the next run is expected; the horizon each file's copy must outlive. */
	nextRun?: Date;
	/** Objects the new snapshot uses must be locked at least until here (reinclude mode). */
	horizon: Date;
	strategy: "extend" | "reinclude";
	/** A stored copy whose lock ends before this date is not reused: the data is uploaded anew. */
	reuseMinLock?: Date;
	/** Which files were re-included and why: filled during the run. */
	notes: string[];
}

export interface LockExtension {
	readonly key: string;
	readonly versionId?: string;
	readonly from: Date | undefined;
	readonly to: Date;
	readonly mode: LockMode;
	readonly reason: string;
}

/** The lock step's waterfall value: extensions to apply after the data is written. */
export interface LockPlan {
	extensions: LockExtension[];
	/**
	 * Existing objects the new snapshot needs (reused packs, the index objects listing them,
	 * config and key files). Objects written by this run already carry the run's lock.
	 */
	needed: string[];
}

export interface RunWarning {
	readonly path: string;
	readonly reason: string;
}

export interface BackupSummary {
	files: { new: number; changed: number; unchanged: number; reincluded: number; skipped: number };
	dirs: number;
	bytes: { read: number; uploaded: number; added: number };
	objects: { uploaded: number; extended: number };
	blobs: { new: number; reused: number };
}

export interface UploadedObject {
	readonly key: string;
	readonly size: number;
	readonly lock: ObjectLock;
	readonly kind: "pack" | "index" | "snapshot" | "config" | "key";
}

export interface ScannedEntry {
	readonly entry: SourceEntry;
	readonly path: string;
}
