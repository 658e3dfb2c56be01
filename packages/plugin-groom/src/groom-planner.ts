import {
	collectSnapshotObjects,
	describeError,
	type GroomCandidate,
	type GroomConfig,
	type GroomPlan,
	HoldfastError,
	isHoldfastError,
	KEY_PREFIX,
	metadataFor,
	type RunContext,
} from "@holdfast/core";
import { decideKeep } from "./keep-rules.js";

export const GROOM_DEFAULTS: GroomConfig = Object.freeze({ match: "retention", afterBackup: false, graceHours: 6 });

/**
 * Which snapshots of the set leave, and which objects no remaining snapshot (of any set in
 * the repository) needs. Whether a candidate is still locked is the core's to check.
 */
export async function planGroom(plan: GroomPlan, context: RunContext): Promise<GroomPlan> {
	const { repository } = context;
	const config: GroomConfig = { ...GROOM_DEFAULTS, ...(context.set.groom ?? {}) };
	const now = context.startedAt;
	const { refs: all, unreadable } = await repository.readSnapshots();
	// What an unreadable object records (a snapshot's trees, an index's packs) may be all that keeps data alive.
	const blocking = [...unreadable, ...repository.unreadableIndex];
	if (blocking.length > 0) {
		throw refusal(blocking.map((u) => `${u.key} cannot be read (${u.reason})`));
	}
	const decisions = decideKeep(
		all.filter((r) => r.snapshot.set === context.setName),
		config,
		now,
	);
	const forget = decisions.filter((d) => !d.keep).map((d) => d.ref);
	const forgetIds = new Set(forget.map((r) => r.id));
	const remaining = all.filter((r) => !forgetIds.has(r.id));

	const metadata = metadataFor(repository);
	const neededKeys = new Set<string>();
	const neededBlobs = new Set<string>();
	const seenTrees = new Map<string, Set<string>>();
	for (const ref of remaining) {
		const objects = await collectSnapshotObjects(repository, ref, metadata, seenTrees).catch((error: unknown) => {
			throw refusal([`snapshot ${ref.id.slice(0, 12)}: a tree cannot be read (${describeError(error)})`], error);
		});
		if (objects.missingTrees.length > 0) {
			throw refusal([
				`snapshot ${ref.id.slice(0, 12)}: tree ${objects.missingTrees[0]?.slice(0, 16)} is in no pack of the index`,
			]);
		}
		for (const key of objects.keys) neededKeys.add(key);
		for (const id of objects.blobs) neededBlobs.add(id);
	}

	// Young objects may belong to a backup running right now, whose snapshot is not written yet.
	const graceMs = (config.graceHours ?? 6) * 3_600_000;
	const modified = new Map<string, { size: number; lastModified: Date }>();
	for (const prefix of [KEY_PREFIX.data, KEY_PREFIX.index, KEY_PREFIX.snapshots]) {
		for await (const object of repository.destination.list(prefix)) modified.set(object.key, object);
	}
	const young = (key: string) => (modified.get(key)?.lastModified.getTime() ?? now.getTime()) > now.getTime() - graceMs;

	const candidates: GroomCandidate[] = [];
	const held: GroomPlan["held"] = [...plan.held];
	for (const ref of forget) {
		candidates.push({ kind: "snapshot", key: ref.key, bytes: 0, snapshotId: ref.id, time: new Date(ref.snapshot.time) });
	}
	// Snapshots an earlier groom forgot while their objects were still locked.
	for (const id of repository.index.forgotten) {
		const key = `${KEY_PREFIX.snapshots}${id}`;
		if (modified.has(key)) candidates.push({ kind: "snapshot", key, bytes: modified.get(key)?.size ?? 0, snapshotId: id });
	}
	const deadPacks = new Set<string>();
	for (const [key, pack] of repository.index.packs) {
		if (neededKeys.has(key)) continue;
		if (young(key)) {
			held.push({ key, bytes: pack.size, reason: "grace", detail: `younger than ${config.graceHours} h` });
			continue;
		}
		deadPacks.add(key);
		candidates.push({ kind: "pack", key, bytes: pack.size });
	}
	const indexWithLivePacks = new Set<string>();
	for (const [key, pack] of repository.index.packs) {
		if (!deadPacks.has(key) && pack.indexKey) indexWithLivePacks.add(pack.indexKey);
	}
	for (const key of repository.index.indexKeys) {
		if (indexWithLivePacks.has(key) || neededKeys.has(key) || young(key)) continue;
		// The newest groom index carries the tombstones and lock records in force; older ones are superseded.
		if (repository.index.newestCarrier?.key === key) continue;
		candidates.push({ kind: "index", key, bytes: modified.get(key)?.size ?? 0 });
	}

	let deadBytes = 0;
	for (const [id, location] of repository.index.blobs) {
		if (!neededBlobs.has(id) && !deadPacks.has(location.packKey)) deadBytes += location.length;
	}

	return {
		forget: [
			...plan.forget,
			...forget.map((r) => ({ id: r.id, key: r.key, time: r.snapshot.time, reason: "retention window passed" })),
		],
		keep: [...plan.keep, ...decisions.filter((d) => d.keep).map((d) => ({ id: d.ref.id, reason: d.keep as string }))],
		delete: [...plan.delete, ...candidates],
		held,
		deadBytesInLivePacks: plan.deadBytesInLivePacks + deadBytes,
	};
}

/** Grooming decides from everything or not at all: one object it cannot read stops every deletion (reported as "[groom] groom: …"). */
function refusal(problems: string[], cause?: unknown): HoldfastError {
	const code = isHoldfastError(cause, "UNREACHABLE") ? "UNREACHABLE" : "CORRUPT";
	return new HoldfastError(code, `nothing deleted: ${problems.join("\n")}`, cause ? { cause } : undefined);
}
