/**
 * The destination contract. A destination stores immutable, versioned objects and declares
 * what it can do; the core plans by these capabilities and never asks for more. A plugin
 * provides the raw store; the core wraps it (`composeDestination`): lock emulation for a store
 * without Object Lock, retry of transient faults, and for a dry run a store that writes nothing.
 *
 * A store classifies its failures and does not retry them: a fault worth another try (a 5xx,
 * 429 or SlowDown answer, a connection reset or timeout, a body cut off midway) is thrown with
 * `transient: true`, an HTTP status in `$metadata.httpStatusCode`, or a network `code`, also as
 * the `cause` of the store's own error (`classifyFault` reads the chain). Every call must be
 * safe to repeat whole, as the retry layer repeats it (see `RetryingDestination`).
 */
import type { DoctorFinding, DoctorRequest, KeyAccess, KeyRole } from "./doctor.js";

export type LockMode = "compliance" | "governance";

export interface ObjectLock {
	readonly mode: LockMode;
	readonly until: Date;
}

export interface DestinationCapabilities {
	/**
	 * The store itself, not this process, refuses deletes of locked versions. A store that
	 * declares `false` keeps lock records as told and the core emulates the lock (`EmulatedLocks`).
	 */
	readonly enforcedByProvider: boolean;
	/** Retention of an existing version can be extended without re-sending bytes. */
	readonly lockExtension: boolean;
	/** The longest retention the store accepts; the core refuses a set that asks for more. */
	readonly maxRetentionDays: number;
	/**
	 * Ranged reads a restore keeps under way at once. A store far away (each request waits a
	 * round trip) asks for more than a local disk needs; unset means 4, what a disk wants.
	 */
	readonly readsInFlight?: number;
	/**
	 * Digests a store needs of a file before it sends it (`putFile`): `md5` for a store whose
	 * locked writes carry Content-MD5. The core computes them in the pass that hashes the pack
	 * for its key, on a worker, and hands them to `putFile`; unset, none are computed.
	 */
	readonly fileDigests?: readonly "md5"[];
}

/** Digests of a file given to `putFile`, those the store declared in `fileDigests`. */
export interface FileDigests {
	/** MD5 of the file's bytes, base64 (as Content-MD5 carries it). */
	readonly md5?: string;
}

/** A new version of `key` whose bytes are the whole file at `path`, `size` bytes long (`putFile`). */
export interface FileUpload {
	readonly key: string;
	readonly path: string;
	readonly size: number;
	/** Locked on the write itself, as `put`'s `lock`. */
	readonly lock?: ObjectLock;
	/** Those the store declared in `capabilities.fileDigests`, when the caller computed them. */
	readonly digests?: FileDigests;
}

export interface ObjectVersion {
	readonly key: string;
	readonly versionId: string;
	readonly size: number;
	readonly lastModified: Date;
	readonly isDeleteMarker: boolean;
	readonly isLatest: boolean;
	readonly lock?: ObjectLock;
	/**
	 * Bytes a crash left without the record that makes them a version (a store whose write is
	 * not one atomic step): listed so grooming collects them, never read as the object.
	 */
	readonly incomplete?: boolean;
}

export interface ListedObject {
	readonly key: string;
	readonly size: number;
	readonly lastModified: Date;
}

export interface ByteRange {
	readonly offset: number;
	readonly length: number;
}

/** Where a listing starts. */
export interface ListOptions {
	/**
	 * Only keys after this one (in key order): the retry layer resumes a listing cut off midway
	 * after the last key it had whole. A store may ignore it: the layer skips what it yielded.
	 */
	readonly startAfter?: string;
}

export interface DestinationCheck {
	readonly ok: boolean;
	/** One line each, saying what is wrong and how to fix it. */
	readonly problems: string[];
	readonly notes: string[];
}

export interface PreflightRequest {
	readonly mode: LockMode;
	/** `init` may create the bucket or directory; a backup never does. */
	readonly create: boolean;
}

export interface Destination {
	/** For messages: `fs:/backups/office`, `b2:acme`. */
	readonly description: string;
	readonly capabilities: DestinationCapabilities;
	/**
	 * A store kept in a folder of this machine names it: the set's sources leave it out, so a
	 * repository inside a backed-up folder is not backed up into itself, growing every run.
	 */
	readonly localFolder?: string;
	/** Checks (and with `create`, prepares) the store before anything is written. */
	preflight(request: PreflightRequest): Promise<DestinationCheck>;
	/** Writes a new version, locked on the write itself when `lock` is given. */
	put(key: string, body: Uint8Array, lock?: ObjectLock): Promise<{ versionId: string }>;
	/**
	 * Optional: writes a new version, as `put`, whose bytes are the whole file at `upload.path`
	 * — a pack assembled on disk, so that no store needs it in memory. The file is the
	 * caller's: the store reads it, as often as the call is repeated, and neither changes nor
	 * removes it. A store without it is given the file read into memory by `put`
	 * (`putFromFile`); every layer of `composeDestination` passes it through.
	 */
	putFile?(upload: FileUpload): Promise<{ versionId: string }>;
	/** The latest version, or the given one. Throws NOT_FOUND when absent or a delete marker. */
	get(key: string, options?: { versionId?: string; range?: ByteRange }): Promise<Uint8Array>;
	head(key: string, versionId?: string): Promise<ObjectVersion | undefined>;
	/** Current objects under a prefix (no delete markers), in key order. */
	list(prefix: string, options?: ListOptions): AsyncIterable<ListedObject>;
	/** Every version and delete marker under a prefix, in key order, newest first within a key. */
	listVersions(prefix: string, options?: ListOptions): AsyncIterable<ObjectVersion>;
	/** Sets a later retain-until; the store refuses an earlier one for compliance locks. */
	extendLock(key: string, versionId: string, lock: ObjectLock): Promise<void>;
	/** Deletes one version for good (not a delete marker). Refused while locked. */
	deleteVersion(key: string, versionId: string, options?: { bypassGovernance?: boolean }): Promise<void>;
	/** Adds a delete marker (what `DELETE key` without a version does). */
	deleteMarker(key: string): Promise<void>;
	/** Findings about the store and this destination's key, proven where possible (`holdfast doctor`). */
	doctor?(request: DoctorRequest): Promise<DoctorFinding[]>;
	/** What this destination's key may do, told cheaply and without writing (asked by every backup). */
	inspectAccess?(): Promise<KeyAccess>;
	/**
	 * What it needs from this machine's environment and does not find (a key's variable unset),
	 * a line each, looked up without reaching the store: `holdfast config check` says it before a
	 * first run fails on it. A line for a key only some commands use says which.
	 */
	missingEnvironment?(): readonly string[];
	/**
	 * At most this many attempts per call (a store option), within the set's retry budget. The
	 * store itself never retries: it throws, and the core's retry layer decides by the error.
	 */
	readonly maxAttempts?: number;
	/** This destination with the key configured for `role`; undefined when the role uses the same key. */
	withKey?(role: KeyRole): Destination | undefined;
	close?(): Promise<void>;
}

/** Thrown by destinations when the store refuses a destructive call because of a lock. */
export class LockRefusedError extends Error {
	readonly code = "LOCKED";
	constructor(message: string, options?: { cause?: unknown }) {
		super(message, options);
		this.name = "LockRefusedError";
	}
}

export class ObjectNotFoundError extends Error {
	readonly code = "NOT_FOUND";
	constructor(
		readonly key: string,
		options?: { cause?: unknown },
	) {
		super(`object not found: ${key}`, options);
		this.name = "ObjectNotFoundError";
	}
}
