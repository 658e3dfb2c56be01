import {
	describeError,
	type GroomCandidate,
	type GroomPlan,
	HoldfastError,
	isHoldfastError,
	KEY_PREFIX,
	type RunContext,
} from "@holdfast/core";
import { groomKey } from "./groom-config.js";
import { decideKeep } from "./keep-rules.js";

/**
 * Which snapshots of the set leave, and which objects no remaining snapshot (of any set in
 * the repository) needs. Whether a candidate is still locked is the core's to check.
 */
export async function planGroom(plan: GroomPlan, context: RunContext): Promise<GroomPlan> {
	const { repository } = context;
	const config = groomKey(context.set);
	const graceHours = config.graceHours ?? plan.graceHours;
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

	const neededKeys = new Set<string>();
	const neededBlobs = new Set<string>();
	const seenTrees = new Map<string, Set<string>>();
	let missingBlob: string | undefined;
	for (const ref of remaining) {
		const objects = await repository.snapshotObjects(ref, seenTrees).catch((error: unknown) => {
			throw refusal([`snapshot ${ref.id.slice(0, 12)}: a tree cannot be read (${describeError(error)})`], error);
		});
		if (objects.missingTrees.length > 0) {
			throw refusal([
				`snapshot ${ref.id.slice(0, 12)}: tree ${objects.missingTrees[0]?.slice(0, 16)} is in no pack of the index`,
			]);
		}
		if (objects.missing.length > 0 && !missingBlob)
			missingBlob = `snapshot ${ref.id.slice(0, 12)} misses blob ${objects.missing[0]?.slice(0, 16)}`;
		for (const key of objects.keys) neededKeys.add(key);
		for (const id of objects.blobs) neededBlobs.add(id);
	}

	// Every object stored, by its versions (delete markers hide nothing): packs no index object
	// lists (a killed backup's) and objects a killed groom tombstoned are found only this way.
	const graceMs = graceHours * 3_600_000;
	const stored = await repository.storedObjects();
	const young = (key: string) => (stored.get(key)?.newest.getTime() ?? now.getTime()) > now.getTime() - graceMs;
	const bytesOf = (key: string, fallback = 0) => stored.get(key)?.bytes ?? fallback;

	const candidates: GroomCandidate[] = [];
	const held: GroomPlan["held"] = [...plan.held];
	const proposed = new Set<string>();
	const propose = (candidate: GroomCandidate) => {
		if (proposed.has(candidate.key)) return;
		proposed.add(candidate.key);
		candidates.push(candidate);
	};
	for (const ref of forget) {
		propose({ kind: "snapshot", key: ref.key, bytes: bytesOf(ref.key), snapshotId: ref.id, time: new Date(ref.snapshot.time) });
	}
	// Snapshots an earlier groom forgot while their objects were still locked.
	for (const id of repository.index.forgotten) {
		const key = `${KEY_PREFIX.snapshots}${id}`;
		if (stored.has(key)) propose({ kind: "snapshot", key, bytes: bytesOf(key), snapshotId: id });
	}
	// Tombstoned by an earlier groom that was cut short before it deleted them: its decision stands.
	for (const key of repository.index.tombstoned) {
		if (stored.has(key)) propose({ kind: kindOf(key), key, bytes: bytesOf(key) });
	}
	const deadPacks = new Set<string>();
	const packKeys = new Set([
		...repository.index.packs.keys(),
		...[...stored.keys()].filter((k) => k.startsWith(KEY_PREFIX.data)),
	]);
	for (const key of packKeys) {
		if (neededKeys.has(key) || !stored.has(key) || repository.index.tombstoned.has(key)) continue;
		const bytes = bytesOf(key, repository.index.packs.get(key)?.size ?? 0);
		// A blob the index lacks may be in a pack no index object lists (its header was not read): keep those.
		if (missingBlob && !repository.index.packs.has(key)) {
			held.push({ key, bytes, reason: "snapshot", detail: `listed by no index object and ${missingBlob}` });
			continue;
		}
		if (young(key)) {
			held.push({ key, bytes, reason: "grace", detail: `younger than ${graceHours} h` });
			continue;
		}
		deadPacks.add(key);
		propose({ kind: "pack", key, bytes });
	}
	const indexWithLivePacks = new Set<string>();
	for (const [key, pack] of repository.index.packs) {
		if (!deadPacks.has(key) && pack.indexKey) indexWithLivePacks.add(pack.indexKey);
	}
	for (const key of repository.index.indexObjects) {
		if (indexWithLivePacks.has(key) || neededKeys.has(key) || young(key) || !stored.has(key)) continue;
		// The newest groom index carries the tombstones, condemned objects and lock records in force; older ones are superseded.
		if (repository.index.newestCarrier === key) continue;
		propose({ kind: "index", key, bytes: bytesOf(key) });
	}
	// Index and snapshot objects whose every version a crash cut off before its record (a killed
	// backup's last index object): no run reads them, so nothing they list is counted as listed.
	// Packs are found above whatever lists them.
	for (const [key, object] of stored) {
		if (!object.incomplete || key.startsWith(KEY_PREFIX.data) || neededKeys.has(key) || young(key)) continue;
		propose({ kind: kindOf(key), key, bytes: object.bytes });
	}

	const deadBytes = repository.index.deadBytes(neededBlobs, deadPacks);

	return {
		forget: [
			...plan.forget,
			...forget.map((r) => ({ id: r.id, key: r.key, time: r.snapshot.time, reason: "retention window passed" })),
		],
		keep: [...plan.keep, ...decisions.filter((d) => d.keep).map((d) => ({ id: d.ref.id, reason: d.keep as string }))],
		delete: [...plan.delete, ...candidates],
		held,
		deadBytesInLivePacks: plan.deadBytesInLivePacks + deadBytes,
		graceHours,
	};
}

/** Grooming decides from everything or not at all: one object it cannot read stops every deletion (reported as "[groom] groom: …"). */
function refusal(problems: string[], cause?: unknown): HoldfastError {
	const code = isHoldfastError(cause, "UNREACHABLE") ? "UNREACHABLE" : "CORRUPT";
	return new HoldfastError(code, `nothing deleted: ${problems.join("\n")}`, cause ? { cause } : undefined);
}

function kindOf(key: string): GroomCandidate["kind"] {
	if (key.startsWith(KEY_PREFIX.data)) return "pack";
	if (key.startsWith(KEY_PREFIX.index)) return "index";
	if (key.startsWith(KEY_PREFIX.snapshots)) return "snapshot";
	return "key";
}
