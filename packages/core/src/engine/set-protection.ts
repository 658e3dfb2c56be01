import type { SnapshotRef, UnreadableObject } from "../repository/snapshot.js";
import type { OpenSet } from "./engine.js";

/** One host of a set as `status` shows it: its newest snapshot and how long what it needs is locked. */
export interface HostProtection {
	readonly host: string;
	/** The host's snapshots of the set, oldest first. */
	readonly snapshots: readonly SnapshotRef[];
	/** The earliest recorded lock among the objects the newest snapshot needs; undefined before its first. */
	readonly lockedUntil?: Date;
}

export interface SetProtection {
	readonly open: OpenSet;
	/** Every snapshot of the repository, any set: due times are judged against them. */
	readonly all: readonly SnapshotRef[];
	readonly hosts: readonly HostProtection[];
	/** Bytes of every pack the index lists. */
	readonly storedBytes: number;
	/** Snapshot objects no version of which verifies: a host's last backup may be among them, so none is "never backed up" for sure. */
	readonly unreadable: readonly UnreadableObject[];
}

/**
 * `status`: per host that has backed up into the set (and `thisHost`, even before its first
 * backup), its snapshots and the earliest lock among what its newest one needs, as recorded.
 */
export async function setProtection(open: OpenSet, thisHost: string, onlyHost?: string): Promise<SetProtection> {
	const { refs: all, unreadable } = await open.repository.readSnapshots();
	const ofSet = all.filter((r) => r.snapshot.set === open.name);
	const names = [...new Set([thisHost, ...ofSet.map((r) => r.snapshot.host)])]
		.filter((h) => onlyHost === undefined || h === onlyHost)
		.sort();
	let storedBytes = 0;
	for (const pack of open.repository.index.packs.values()) storedBytes += pack.size;
	const hosts: HostProtection[] = [];
	for (const host of names) {
		const snapshots = ofSet.filter((r) => r.snapshot.host === host);
		const last = snapshots.at(-1);
		hosts.push({ host, snapshots, ...(last ? optionalLock(await earliestLock(open, last)) : {}) });
	}
	return { open, all, hosts, storedBytes, unreadable };
}

/** The earliest recorded lock among the objects `snapshot` needs; undefined when it needs none. */
async function earliestLock(open: OpenSet, snapshot: SnapshotRef): Promise<Date | undefined> {
	let earliest = Number.POSITIVE_INFINITY;
	for (const key of (await open.view.snapshotObjects(snapshot)).keys) {
		const recorded = open.repository.index.lockUntil(key)?.getTime() ?? 0;
		// A snapshot object is written locked at least until its own protect-until.
		const known = key === snapshot.key ? Math.max(recorded, new Date(snapshot.snapshot.protectUntil).getTime()) : recorded;
		earliest = Math.min(earliest, known);
	}
	return Number.isFinite(earliest) ? new Date(earliest) : undefined;
}

function optionalLock(lockedUntil: Date | undefined): { lockedUntil?: Date } {
	return lockedUntil ? { lockedUntil } : {};
}
