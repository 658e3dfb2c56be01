import type { RetentionTierPeriod, SetConfig } from "../config/config-types.js";
import type { LockMode, ObjectLock } from "../destination/destination.js";
import type { Logger } from "../host/logger.js";
import type { SourceEntry } from "../source/source.js";
import type { RepositoryView } from "./repository-view.js";

export type RunKind = "backup" | "restore" | "check" | "groom" | "plan" | "init" | "repair";

/** What every hook of one run sees: the set, the time the run started, and where it writes. */
export interface RunContext {
	readonly kind: RunKind;
	readonly setName: string;
	readonly set: SetConfig;
	readonly startedAt: Date;
	/**
	 * The run writes nothing: its destination (`DryRunDestination`) counts writes and drops
	 * them, and its catalog is read-only, so the steps run as in a real run. Asked only where
	 * a run must say "would", or a hook keeps its promise of firing in real runs alone.
	 */
	readonly dryRun: boolean;
	/** What the run's hooks may read of the repository; they change it only through their return values. */
	readonly repository: RepositoryView;
	readonly logger: Logger;
	readonly signal: AbortSignal;
	/**
	 * The run's plan, once the `plan` taps have made it (`backup` and `plan` runs, from `scan`
	 * on): per-run state lives on the run, so a `lock` tap reads the plan here.
	 */
	readonly plan?: RunPlan;
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
	/** The snapshot's own protect-until (time + the days of its tier). */
	protectUntil: Date;
	/** The longest retention tier the snapshot belongs to; absent for the base `retention.days`. */
	tier?: RetentionTierPeriod;
	/** When the next run is expected to start. */
	nextRun?: Date;
	/**
	 * When the run that renews protection next will have finished: the next run (after the
	 * grace for missed runs) plus a margin for its duration and clock skew. A copy whose lock
	 * ends before it is renewed by this run, not trusted to last until the next one.
	 */
	horizon: Date;
	strategy: "extend" | "reinclude";
	/** A stored copy whose lock ends before this date is not reused: the data is uploaded anew. */
	reuseMinLock?: Date;
	/** When the set's newest earlier snapshot was taken (to tell missed runs). */
	previousRun?: Date;
	/** Which files were re-included and why: filled during the run. */
	notes: string[];
	/** What the user must hear before trusting this schedule (missed runs, a gap in protection). */
	warnings: string[];
}

export interface LockExtension {
	readonly key: string;
	readonly versionId?: string;
	readonly from: Date | undefined;
	readonly to: Date;
	readonly mode: LockMode;
	readonly reason: string;
}

/** A blob copied, sealed bytes as they are, into a new pack locked as the copy needs. */
export interface BlobRenewal {
	readonly id: string;
	/** The pack it is copied from. */
	readonly from: string;
	/** The new copy's lock: at least what the snapshots using the blob need. */
	readonly lock: ObjectLock;
	readonly reason: string;
}

/** One object some snapshot in its window needs, until when, and until when it is locked now. */
export interface ObjectNeed {
	readonly key: string;
	readonly kind: "pack" | "index" | "snapshot" | "config" | "key";
	/** The latest protect-until of the snapshots that need it. */
	readonly until: Date;
	/** Its lock as recorded in the index; undefined when unknown. */
	readonly lockUntil: Date | undefined;
	readonly versionId?: string;
}

/** A pack some snapshot needs: which of its blobs are live and until when. */
export interface PackNeed extends ObjectNeed {
	readonly kind: "pack";
	readonly size: number;
	readonly liveBytes: number;
	readonly live: readonly { readonly id: string; readonly until: Date; readonly length: number }[];
	/** The index object that lists it. */
	readonly indexKey: string | undefined;
}

/**
 * Everything the snapshots in their window need, with each object's need and lock: computed
 * by the core before the lock step, read-only for the taps.
 */
export interface ProtectionNeeds {
	/** Every needed object but the packs, by key. */
	readonly objects: ReadonlyMap<string, ObjectNeed>;
	readonly packs: ReadonlyMap<string, PackNeed>;
	/** Snapshots whose window is open, the new one included. */
	readonly snapshots: number;
}

/** The lock step's waterfall value: how the run keeps every needed object protected. */
export interface LockPlan {
	extensions: LockExtension[];
	/** Blobs copied into new packs (re-include at blob level, and repacking of mostly dead packs). */
	renewals: BlobRenewal[];
	/** Packs locked long enough whose index object is not: listed again in the run's index object. */
	relist: string[];
	/** Write fresh config and key copies locked with the run's lock (stores that cannot extend). */
	renewMetadata: boolean;
	/** Read-only: what needs protecting until when. */
	readonly needs: ProtectionNeeds;
}

/** Something a run skipped or stored flagged: logged, counted and passed to `warning`. */
export interface RunWarning {
	readonly path: string;
	readonly reason: string;
}

export interface BackupSummary {
	files: { new: number; changed: number; unchanged: number; reincluded: number; skipped: number };
	dirs: number;
	/** `renewed`: sealed bytes of older blobs copied into new packs to keep them protected. */
	bytes: { read: number; uploaded: number; added: number; renewed: number };
	objects: { uploaded: number; extended: number; renewedBlobs: number };
	blobs: { new: number; reused: number };
}

/** An object the core wrote, as `didUploadObject` reports it. */
export interface UploadedObject {
	/** Its key in the repository (`data/…`, `index/…`, `snapshots/…`, `config/…`, `keys/…`). */
	readonly key: string;
	/** Bytes written. */
	readonly size: number;
	/** The lock it was written with (on the write itself). */
	readonly lock: ObjectLock;
	readonly kind: "pack" | "index" | "snapshot" | "config" | "key";
}

/** One entry of a source as the walk takes it, with its display path (`root/rel/path`). */
export interface ScannedEntry {
	readonly entry: SourceEntry;
	readonly path: string;
}
