import { createHash } from "node:crypto";
import {
	type Destination,
	decodeName,
	LockRefusedError,
	type Logger,
	ManualClock,
	type ObjectVersion,
	type SnapshotRef,
} from "@holdfast/core";
import { attackerView, MemoryLogger, Repository } from "@holdfast/core/testing";

/** What a snapshot must restore to: relative path → SHA-256 of the content. */
export type ExpectedFiles = Map<string, string>;

export interface ExpectedSnapshot {
	readonly time: string;
	readonly protectUntil: Date;
	readonly files: ExpectedFiles;
}

export interface AttackOutcome {
	readonly at: Date;
	/** Snapshots that had to restore (their window still open at `at`). */
	readonly inWindow: number;
	readonly restored: number;
	/** Of `restored`, those an earlier attack already restored from exactly the same surviving versions. */
	readonly reused: number;
	readonly failures: string[];
}

/**
 * Attacker's views already restored in full, by what survives in them. A restore reads only
 * the surviving versions, and a version's bytes never change, so a view whose versions (and
 * their locks) are exactly those of one already restored restores the same snapshots the same
 * way: between two runs nothing is written, and often no lock ends either.
 */
export class ProvenViews {
	readonly #proven = new Map<string, Set<string>>();

	/** True when every snapshot in `due` was restored from a view with this fingerprint. */
	covers(fingerprint: string, due: readonly ExpectedSnapshot[]): boolean {
		const known = this.#proven.get(fingerprint);
		return known !== undefined && due.every((s) => known.has(s.time));
	}

	add(fingerprint: string, restored: readonly ExpectedSnapshot[]): void {
		const known = this.#proven.get(fingerprint) ?? new Set<string>();
		for (const s of restored) known.add(s.time);
		this.#proven.set(fingerprint, known);
	}
}

/**
 * Versions' locks as the store answered, kept across writes for a store whose listing omits
 * them (S3, where each costs a HEAD). In compliance mode a lock only ever grows, so one known
 * is at most the true one (an attacker who trusted it would delete more, never less); still,
 * the test forgets a version's lock each time it asks the store to extend it.
 */
export class KnownLocks {
	readonly heads = new Map<string, Promise<ObjectVersion | undefined>>();

	forget(key: string, versionId: string): void {
		this.heads.delete(`${key}\t${versionId}`);
	}
}

/**
 * The store as it stands until the next write (a backup, a groom). An attack reads every
 * version and its lock; attacks at several instants between the same two writes get the same
 * answers, so the versions and each lock are asked of the store once. Take a new one after
 * anything wrote. A version's bytes never change (its id is never reused), so reads of a
 * given version are kept in `bytes`, shared by the stores of one test. Writes are refused.
 */
export function unchangedStore(
	destination: Destination,
	bytes?: Map<string, Promise<Uint8Array>>,
	locks?: KnownLocks,
): Destination {
	let listing: Promise<ObjectVersion[]> | undefined;
	const latestHeads = new Map<string, Promise<ObjectVersion | undefined>>();
	const all = () => {
		listing ??= (async () => {
			const versions: ObjectVersion[] = [];
			for await (const version of destination.listVersions("")) versions.push(version);
			return versions;
		})();
		return listing;
	};
	const refuse = async (): Promise<never> => {
		throw new LockRefusedError(`${destination.description}: read between two runs, not written`);
	};
	return {
		description: destination.description,
		capabilities: destination.capabilities,
		preflight: (request) => destination.preflight(request),
		get(key, options = {}) {
			if (!bytes || options.versionId === undefined) return destination.get(key, options);
			const id = `${key}\t${options.versionId}\t${options.range?.offset}\t${options.range?.length}`;
			let read = bytes.get(id);
			if (!read) {
				bytes.set(id, (read = destination.get(key, options)));
				read.catch(() => bytes.delete(id));
			}
			// A copy: a reader may decrypt or decompress in place.
			return read.then((body) => Buffer.from(body));
		},
		head(key, versionId) {
			// A given version's answer outlives this store (its lock is forgotten when extended); the latest's does not.
			const heads = versionId !== undefined && locks ? locks.heads : latestHeads;
			const id = `${key}\t${versionId ?? ""}`;
			let head = heads.get(id);
			if (!head) {
				heads.set(id, (head = destination.head(key, versionId)));
				head.catch(() => heads.delete(id));
			}
			return head;
		},
		list: (prefix) => destination.list(prefix),
		async *listVersions(prefix) {
			for (const version of await all()) if (version.key.startsWith(prefix)) yield version;
		},
		put: refuse,
		extendLock: refuse,
		deleteVersion: refuse,
		deleteMarker: refuse,
	};
}

/** Every surviving version, in listing order, with its size and lock: equal fingerprints, equal views. */
async function fingerprintOf(view: Destination): Promise<string> {
	const hash = createHash("sha256");
	for await (const v of view.listVersions("")) {
		hash.update(`${v.key}\t${v.versionId}\t${v.size}\t${v.isLatest}\t${v.lock?.mode}\t${v.lock?.until.toISOString()}\n`);
	}
	return hash.digest("hex");
}

/**
 * The attacker's test of the invariant at instant `at`: every version whose lock has ended is
 * deleted, the catalog is gone, and every snapshot whose window is still open must restore
 * bit-exactly from what is left and the password alone.
 */
export async function attackAndRestore(
	destination: Destination,
	password: string,
	expected: readonly ExpectedSnapshot[],
	at: Date,
	proven?: ProvenViews,
): Promise<AttackOutcome> {
	const due = expected.filter((s) => s.protectUntil.getTime() > at.getTime());
	const failures: string[] = [];
	if (due.length === 0) return { at, inWindow: 0, restored: 0, reused: 0, failures };
	const view = attackerView(destination, at);
	// The listing is the view's own (read once, then served to the restore below): it costs no extra request.
	const fingerprint = proven ? await fingerprintOf(view) : "";
	if (proven?.covers(fingerprint, due)) return { at, inWindow: due.length, restored: due.length, reused: due.length, failures };
	const logger: Logger = new MemoryLogger("error");
	let repository: Repository;
	try {
		repository = await Repository.open(password, {
			destination: view,
			clock: new ManualClock(at),
			logger,
		});
	} catch (error) {
		return { at, inWindow: due.length, restored: 0, reused: 0, failures: [`open: ${(error as Error).message}`] };
	}
	let restored = 0;
	try {
		await repository.loadIndex();
		const listed = new Map((await repository.listSnapshots()).map((r) => [r.snapshot.time, r]));
		const reader = new SnapshotReader(repository);
		for (const snapshot of due) {
			const ref = listed.get(snapshot.time);
			if (!ref) {
				failures.push(`snapshot of ${snapshot.time}: not listed`);
				continue;
			}
			try {
				const problem = compare(await reader.files(ref), snapshot.files);
				if (problem) failures.push(`snapshot of ${snapshot.time}: ${problem}`);
				else restored++;
			} catch (error) {
				failures.push(`snapshot of ${snapshot.time}: ${(error as Error).message}`);
			}
		}
	} finally {
		await repository.close();
	}
	if (failures.length === 0) proven?.add(fingerprint, due);
	return { at, inWindow: due.length, restored, reused: 0, failures };
}

/**
 * Reads every file of a snapshot through the same verified blob reads a restore makes. A blob
 * or tree read and verified once in one attacker's view reads the same for every snapshot
 * that shares it, so each is read once per view.
 */
class SnapshotReader {
	readonly #blobs = new Map<string, Promise<Buffer>>();
	readonly #trees = new Map<string, ReturnType<Repository["loadTree"]>>();

	constructor(private readonly repository: Repository) {}

	async files(ref: SnapshotRef): Promise<ExpectedFiles> {
		const files: ExpectedFiles = new Map();
		const walk = async (treeId: string, prefix: string) => {
			for (const node of (await this.#tree(treeId)).nodes) {
				const name = decodeName(node.name).toString("latin1");
				const path = prefix ? `${prefix}/${name}` : name;
				if (node.type === "dir" && node.subtree) await walk(node.subtree, path);
				else if (node.type === "file") {
					const hash = createHash("sha256");
					for (const id of node.content ?? []) hash.update(await this.#blob(id));
					files.set(path, hash.digest("hex"));
				}
			}
		};
		await walk(ref.snapshot.tree, "");
		return files;
	}

	#tree(id: string) {
		let tree = this.#trees.get(id);
		if (!tree) this.#trees.set(id, (tree = this.repository.loadTree(id)));
		return tree;
	}

	#blob(id: string) {
		let blob = this.#blobs.get(id);
		if (!blob) this.#blobs.set(id, (blob = this.repository.loadBlob(id, { wholePack: true })));
		return blob;
	}
}

function compare(actual: ExpectedFiles, expected: ExpectedFiles): string | undefined {
	for (const [path, sha] of expected) {
		const got = actual.get(path);
		if (got === undefined) return `${path} missing`;
		if (got !== sha) return `${path} differs`;
	}
	for (const path of actual.keys()) if (!expected.has(path)) return `${path} was not in the source`;
	return undefined;
}
