import type { LifecycleHooks } from "../hooks/lifecycle-hooks.js";
import { KEY_PREFIX } from "../repository/format.js";
import type { GroomCandidate, GroomPlan, HeldObject } from "./groom-types.js";
import type { RunContext } from "./run-types.js";

export interface GroomResult {
	forgotten: string[];
	deleted: { objects: number; bytes: number; keys: string[] };
	heldByLock: { objects: number; bytes: number };
	held: HeldObject[];
	deadBytesInLivePacks: number;
	dryRun: boolean;
}

/**
 * Carries out a groom plan. Whatever the plan says, the core deletes nothing still locked
 * (it asks the store for the version's lock first) and nothing a `keep` tap holds; a dry
 * run decides exactly the same way and deletes nothing.
 */
export async function executeGroom(context: RunContext, plan: GroomPlan, hooks: LifecycleHooks): Promise<GroomResult> {
	const { repository } = context;
	const destination = repository.destination;
	const now = context.startedAt;
	const held: HeldObject[] = [...plan.held];
	const deletable: GroomCandidate[] = [];
	for (const candidate of plan.delete) {
		const veto = hooks.keep.call(candidate, context);
		if (veto) {
			held.push({ key: candidate.key, bytes: candidate.bytes, reason: "veto", detail: veto });
			continue;
		}
		const versions = [];
		for await (const version of destination.listVersions(candidate.key))
			if (version.key === candidate.key) versions.push(version);
		const locked = versions
			.filter((v) => v.lock && v.lock.until.getTime() > now.getTime())
			.sort((a, b) => (b.lock?.until.getTime() ?? 0) - (a.lock?.until.getTime() ?? 0))[0];
		if (locked?.lock) {
			held.push({ key: candidate.key, bytes: candidate.bytes, reason: "lock", until: locked.lock.until });
			continue;
		}
		deletable.push(candidate);
	}

	const deletedKeys: string[] = [];
	let deletedBytes = 0;
	const forgottenIds = plan.forget.map((f) => f.id);
	if (!context.dryRun) {
		for (const candidate of deletable) {
			for await (const version of destination.listVersions(candidate.key)) {
				if (version.key !== candidate.key) continue;
				await destination.deleteVersion(candidate.key, version.versionId);
			}
			deletedKeys.push(candidate.key);
			deletedBytes += candidate.bytes;
		}
		// Tombstones, so that index objects still listing deleted packs (kept by their own
		// locks) no longer offer those packs for dedup or restore.
		const tombstones = deletedKeys.filter(
			(k) => k.startsWith(KEY_PREFIX.data) || k.startsWith(KEY_PREFIX.index) || k.startsWith(KEY_PREFIX.snapshots),
		);
		const stillListed = forgottenIds.filter((id) => !deletedKeys.includes(`${KEY_PREFIX.snapshots}${id}`));
		if (tombstones.length > 0 || stillListed.length > 0) {
			repository.beginRun({ mode: context.set.retention.mode ?? "compliance", until: new Date(now.getTime() + 86_400_000) });
			await repository.writeIndex([], { deleted: tombstones, forgotten: stillListed });
		}
	} else {
		for (const candidate of deletable) {
			deletedKeys.push(candidate.key);
			deletedBytes += candidate.bytes;
		}
	}
	const lockHeld = held.filter((h) => h.reason === "lock");
	return {
		forgotten: forgottenIds,
		deleted: { objects: deletedKeys.length, bytes: deletedBytes, keys: deletedKeys },
		heldByLock: { objects: lockHeld.length, bytes: lockHeld.reduce((sum, h) => sum + h.bytes, 0) },
		held,
		deadBytesInLivePacks: plan.deadBytesInLivePacks,
		dryRun: context.dryRun,
	};
}
