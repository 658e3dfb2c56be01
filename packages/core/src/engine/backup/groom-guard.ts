import { classifyFault } from "../../destination/faults.js";
import { HoldfastError } from "../../host/errors.js";
import type { Logger } from "../../host/logger.js";
import { KEY_PREFIX } from "../../repository/format.js";
import type { BlobLocation } from "../../repository/index-file.js";
import { listKeys, type Repository } from "../../repository/repository.js";

/** Rounds of "read what grooming wrote since, store again what it condemned" before giving up. */
const MAX_ROUNDS = 5;

/**
 * The backup's half of grooming's two-phase delete, run just before the snapshot is written.
 * It reads the index objects written since this run loaded the index; where a groom condemned
 * (or already deleted) a pack holding a blob the snapshot uses, it stores that blob again in
 * a new pack, read and verified from the condemned pack, which grooming keeps for `graceHours`
 * after the mark. A pack already gone fails the run with one line and no snapshot.
 *
 * Returns how many blobs were stored again.
 */
export async function rescueFromGrooming(repository: Repository, reused: ReadonlySet<string>, logger: Logger): Promise<number> {
	const seen = new Set<string>([...repository.index.listed.keys(), ...repository.unreadableIndexes]);
	// Packs this run loaded as condemned are not reused; one reused by an unchanged file's known blobs is caught here too.
	const condemned = new Set<string>(repository.index.condemned.keys());
	const deleted = new Set<string>();
	const handled = new Set<string>();
	let stored = 0;
	for (let round = 0; round < MAX_ROUNDS; round++) {
		for (const key of await listKeys(repository.destination, KEY_PREFIX.index)) {
			if (seen.has(key)) continue;
			seen.add(key);
			try {
				const file = await repository.readIndexFile(key);
				for (const entry of file.condemned ?? []) condemned.add(entry.key);
				for (const gone of file.deleted ?? []) deleted.add(gone);
			} catch (error) {
				if (classifyFault(error) === "unreachable") throw error;
				// An unreadable index object stops every later groom, so it cannot be what deletes a pack we use.
				logger.debug(`${key}: ${(error as Error).message}`);
			}
		}
		// Nothing condemned or deleted: no pack, reused or this run's, is at risk.
		if (condemned.size === 0 && deleted.size === 0) return stored;
		const atRisk = (packKey: string) => (condemned.has(packKey) || deleted.has(packKey)) && !handled.has(packKey);
		const ownPacks = new Set(repository.writtenThisRun.filter((key) => key.startsWith(KEY_PREFIX.data) && atRisk(key)));
		const rescue = new Map<string, BlobLocation>();
		for (const id of reused) {
			const location = repository.index.blobs.get(id);
			if (location && atRisk(location.packKey)) rescue.set(id, location);
		}
		// Only a run longer than the grace sees its own packs condemned: their blobs go into new packs too.
		if (ownPacks.size > 0) {
			for (const [id, location] of repository.index.blobs.inPacks(ownPacks)) rescue.set(id, location);
		}
		if (rescue.size === 0) return stored;
		for (const [id, location] of rescue) {
			const sealed = await repository.readSealedBlob(id, location).catch((error: unknown) => {
				if (classifyFault(error) === "unreachable") throw error;
				throw new HoldfastError(
					"NOT_FOUND",
					`no snapshot written: grooming deleted ${location.packKey}, which this backup reuses, while the backup ran (longer than groom.graceHours); run the backup again`,
					{ cause: error },
				);
			});
			await repository.copySealedBlob(location.type, id, sealed, location.rawLength, { evenIfWritten: true });
			stored++;
		}
		for (const { packKey } of rescue.values()) handled.add(packKey);
		await repository.flushPacks();
		await repository.writeIndex([]);
		logger.info(`${rescue.size} blob(s) in packs grooming condemned during this backup were stored again`);
	}
	throw new HoldfastError(
		"NOT_FOUND",
		`no snapshot written: grooming kept condemning packs this backup uses (${MAX_ROUNDS} rounds); run the backup again`,
	);
}
