import type { ObjectVersion } from "../destination/destination.js";
import type { LifecycleHooks } from "../hooks/lifecycle-hooks.js";
import { HoldfastError } from "../host/errors.js";
import { KEY_PREFIX } from "../repository/format.js";
import type { IndexLock } from "../repository/index-file.js";
import type { Repository } from "../repository/repository.js";
import type { GroomCandidate, GroomPlan, HeldObject } from "./groom-types.js";
import type { RunContext } from "./run-types.js";

export interface GroomResult {
	forgotten: string[];
	deleted: { objects: number; bytes: number; keys: string[] };
	/**
	 * Unneeded objects marked (condemned) by this groom: a later groom deletes them once the
	 * grace has passed and their locks have ended. `locked` of them are also among `heldByLock`.
	 */
	marked: { objects: number; bytes: number; keys: string[]; locked: number };
	heldByLock: { objects: number; bytes: number };
	held: HeldObject[];
	/** How long after its mark a condemned object may be deleted. */
	graceHours: number;
	deadBytesInLivePacks: number;
	dryRun: boolean;
}

/**
 * A snapshot inside its retention window is the promise itself: no `groom` tap may forget one,
 * whatever it plans, or it would leave every listing and restore while its objects stay locked.
 */
async function refuseForgettingProtected(repository: Repository, plan: GroomPlan, now: Date): Promise<void> {
	if (plan.forget.length === 0) return;
	const forget = new Set(plan.forget.map((f) => f.id));
	for (const ref of (await repository.readSnapshots()).refs) {
		if (!forget.has(ref.id) || Date.parse(ref.snapshot.protectUntil) <= now.getTime()) continue;
		throw new HoldfastError(
			"LOCK_SHORTEN",
			`groom: the plan forgets snapshot ${ref.id.slice(0, 12)}, protected until ${ref.snapshot.protectUntil}; nothing was forgotten or deleted`,
		);
	}
}

/**
 * Carries out a groom plan in two phases. A candidate is first marked: the groom's index
 * object lists it as condemned, with the time, and backups stop reusing it. Only a later
 * groom, `graceHours` after the mark and with the object still a candidate then, deletes it;
 * a backup that loaded the index before the mark has that long to notice (see FORMAT.md).
 * Whatever the plan says, the core deletes nothing still locked (it asks the store for every
 * version's lock first) and nothing a `keep` tap holds; a dry run decides exactly the same
 * way, through a destination that writes and deletes nothing.
 *
 * Before deleting, it writes one index object that carries the condemned list, tombstones
 * for what goes (and for earlier deletions some older index object still lists) and a
 * consolidated copy of every lock record, so older index objects can go too. A groom cut
 * short after that write leaves tombstoned objects, which the next groom deletes.
 */
export async function executeGroom(
	repository: Repository,
	context: RunContext,
	plan: GroomPlan,
	hooks: LifecycleHooks,
): Promise<GroomResult> {
	const destination = repository.destination;
	const now = context.startedAt;
	await refuseForgettingProtected(repository, plan, now);
	const graceMs = plan.graceHours * 3_600_000;
	const condemnedBefore = repository.index.condemned;
	const condemned = new Map<string, Date>();
	const marked: GroomCandidate[] = [];
	const held: HeldObject[] = [...plan.held];
	const deletable: GroomCandidate[] = [];
	// Tombstoned objects that stay stored (a veto, a lock): their tombstones must stay, or their records would count again.
	const heldTombstones: string[] = [];
	// A groom index object is superseded the moment a newer one is written, and no backup reuses
	// one: that write is its mark. Marking it in yet another index object would supersede that
	// one in turn, and grooming would never be done.
	const newest = repository.index.newestCarrier;
	const supersededAt = (key: string) =>
		newest && newest.key !== key && repository.index.tombstoneCarriers.has(key) ? new Date(newest.created) : undefined;
	for (const candidate of plan.delete) {
		const veto = hooks.keep.call(candidate, context);
		if (veto && repository.index.deleted.has(candidate.key)) heldTombstones.push(candidate.key);
		if (veto) {
			held.push({ key: candidate.key, bytes: candidate.bytes, reason: "veto", detail: veto });
			continue;
		}
		// A tombstone is a deletion an earlier groom decided and was cut short in: it needs no new mark.
		const decided = repository.index.deleted.has(candidate.key);
		const markedAt = condemnedBefore.get(candidate.key);
		const superseded = markedAt ? undefined : supersededAt(candidate.key);
		const since = markedAt ?? superseded;
		if (!decided && (!since || since.getTime() + graceMs > now.getTime())) {
			if (!superseded) condemned.set(candidate.key, since ?? now);
			if (!since) marked.push(candidate);
			const graceEnds = new Date((since ?? now).getTime() + graceMs);
			// Whichever ends later holds it: a lock recorded past the grace is what the user waits for.
			const lockEnds = repository.index.lockUntil(candidate.key);
			const lockHolds = lockEnds !== undefined && lockEnds.getTime() > graceEnds.getTime();
			held.push({
				key: candidate.key,
				bytes: candidate.bytes,
				reason: lockHolds ? "lock" : "marked",
				until: lockHolds ? lockEnds : graceEnds,
				detail: `${superseded ? "superseded" : "marked"} ${(since ?? now).toISOString()}`,
			});
			continue;
		}
		const locked = (await versionsOf(repository, candidate.key))
			.filter((v) => v.lock && v.lock.until.getTime() > now.getTime())
			.sort((a, b) => (b.lock?.until.getTime() ?? 0) - (a.lock?.until.getTime() ?? 0))[0];
		if (locked?.lock) {
			held.push({ key: candidate.key, bytes: candidate.bytes, reason: "lock", until: locked.lock.until });
			if (markedAt) condemned.set(candidate.key, markedAt);
			if (decided) heldTombstones.push(candidate.key);
			continue;
		}
		deletable.push(candidate);
	}

	const deletedKeys = deletable.map((c) => c.key);
	const deletedBytes = deletable.reduce((sum, c) => sum + c.bytes, 0);
	const forgotten = plan.forget.map((f) => f.id);
	const marksChanged = condemned.size !== condemnedBefore.size || [...condemned.keys()].some((key) => !condemnedBefore.has(key));
	// Superseded groom index objects alone need no record of their going: nothing lists them.
	const recorded = deletable.some((c) => !supersededAt(c.key));
	// A dry run's repository writes through a DryRunDestination: it goes through the same steps and stores nothing.
	if (recorded || forgotten.length > 0 || marksChanged) {
		const leaving = new Set(deletedKeys);
		const tombstones = [...new Set([...deletedKeys, ...heldTombstones, ...repository.index.tombstonesStillNeeded(leaving)])];
		const stillForgotten = [...new Set([...repository.index.forgotten, ...forgotten])].filter(
			(id) => !leaving.has(`${KEY_PREFIX.snapshots}${id}`),
		);
		repository.beginRun({ mode: context.set.retention.mode ?? "compliance", until: new Date(now.getTime() + 86_400_000) });
		// New marks count from this write, not from the groom's start: a backup can see them only from now on.
		const written = new Date(Math.max(now.getTime(), repository.options.clock.now().getTime()));
		for (const candidate of marked) condemned.set(candidate.key, written);
		await repository.writeIndex(consolidatedLocks(repository, leaving, now), {
			deleted: tombstones,
			forgotten: stillForgotten,
			condemned: [...condemned].sort(([a], [b]) => a.localeCompare(b)).map(([key, at]) => ({ key, at: at.toISOString() })),
		});
	}
	for (const candidate of deletable) {
		for (const version of await versionsOf(repository, candidate.key)) {
			await destination.deleteVersion(candidate.key, version.versionId);
		}
	}
	const lockHeld = held.filter((h) => h.reason === "lock");
	const markedNow = new Set(marked.map((c) => c.key));
	return {
		forgotten,
		deleted: { objects: deletedKeys.length, bytes: deletedBytes, keys: deletedKeys },
		marked: {
			objects: marked.length,
			bytes: marked.reduce((sum, c) => sum + c.bytes, 0),
			keys: marked.map((c) => c.key),
			locked: lockHeld.filter((h) => markedNow.has(h.key)).length,
		},
		heldByLock: { objects: lockHeld.length, bytes: lockHeld.reduce((sum, h) => sum + h.bytes, 0) },
		held,
		graceHours: graceMs / 3_600_000,
		deadBytesInLivePacks: plan.deadBytesInLivePacks,
		dryRun: context.dryRun,
	};
}

/** Every version of a key with its lock; listings of some stores (S3) omit locks, so those are asked per version. */
async function versionsOf(repository: Repository, key: string): Promise<ObjectVersion[]> {
	const versions: ObjectVersion[] = [];
	for await (const version of repository.destination.listVersions(key)) {
		if (version.key !== key) continue;
		if (version.lock || version.isDeleteMarker) versions.push(version);
		else {
			const head = await repository.destination.head(key, version.versionId);
			versions.push(head?.lock ? { ...version, lock: head.lock } : version);
		}
	}
	return versions;
}

/** Every lock still in force on an object that stays, with the version it is on. */
function consolidatedLocks(repository: Repository, leaving: ReadonlySet<string>, now: Date): IndexLock[] {
	const locks: IndexLock[] = [];
	for (const [key, lock] of repository.index.locks) {
		if (leaving.has(key) || repository.index.deleted.has(key) || lock.until.getTime() <= now.getTime()) continue;
		const version = repository.index.versions.get(key);
		locks.push({ key, mode: lock.mode, until: lock.until.toISOString(), ...(version ? { version } : {}) });
	}
	return locks;
}
