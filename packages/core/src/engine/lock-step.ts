import { HoldfastError } from "../host/errors.js";
import { concurrencyLimit } from "../host/semaphore.js";
import type { Repository } from "../repository/repository.js";
import type { LockExtension, LockPlan, RunContext } from "./run-types.js";

/**
 * Applies the lock step's extensions. The core lets a lock date only grow: an extension
 * to an earlier or equal date is dropped, whatever the plugin that asked for it.
 */
export async function applyLockPlan(
	repository: Repository,
	plan: LockPlan,
	context: Pick<RunContext, "logger">,
): Promise<LockExtension[]> {
	const wanted = new Map<string, LockExtension>();
	for (const extension of plan.extensions) {
		const current = repository.index.lockUntil(extension.key);
		if (current && current.getTime() >= extension.to.getTime()) continue;
		const previous = wanted.get(extension.key);
		if (!previous || previous.to.getTime() < extension.to.getTime()) wanted.set(extension.key, extension);
	}
	// A dry run goes through the same calls: its destination counts the extensions and sends none.
	if (wanted.size === 0) return [];
	if (!repository.destination.capabilities.lockExtension) {
		throw new HoldfastError(
			"DESTINATION",
			`${repository.destination.description} cannot extend locks; use planner strategy "reinclude" or "auto"`,
		);
	}
	const limit = concurrencyLimit(8);
	const applied: LockExtension[] = [];
	await Promise.all(
		[...wanted.values()].map((extension) =>
			limit(async () => {
				const versionId = extension.versionId ?? (await repository.ownVersion(extension.key));
				if (!versionId) {
					context.logger.warn(`${extension.key}: no verifiable version to extend`);
					return;
				}
				try {
					await repository.destination.extendLock(extension.key, versionId, { mode: extension.mode, until: extension.to });
				} catch (error) {
					// Our record of the lock was stale (a lock record was groomed away): the store's word decides.
					const head = await repository.destination.head(extension.key, versionId);
					if (!head?.lock || head.lock.until.getTime() < extension.to.getTime()) throw error;
					repository.index.noteLock(extension.key, head.lock.mode, head.lock.until);
					return;
				}
				repository.index.noteLock(extension.key, extension.mode, extension.to);
				applied.push({ ...extension, versionId });
			}),
		),
	);
	return applied;
}
