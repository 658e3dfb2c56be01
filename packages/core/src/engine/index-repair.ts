import type { ObjectLock } from "../destination/destination.js";
import type { Repository } from "../repository/repository.js";
import type { RunContext } from "./run-types.js";

export interface IndexRepairResult {
	/** Packs in `data/` that no readable index object lists. */
	readonly packsScanned: number;
	readonly packsRecovered: number;
	readonly blobsRecovered: number;
	/** Packs whose header verifies under no version: nothing could be rebuilt from them. */
	readonly unreadablePacks: string[];
	/** Index objects that verify under no version and that the new index object stands for. */
	readonly rebuiltIndexes: string[];
	/** The index object written (or, with `dryRun`, that would be written: undefined until then). */
	readonly written: string | undefined;
	readonly wouldWrite: boolean;
	readonly lockUntil: string;
	readonly dryRun: boolean;
}

/**
 * `holdfast repair index`: rebuilds the index entries of every pack no readable index object
 * lists from the pack's header, and writes them in one new index object locked like a backup's,
 * so later runs need no fallback.
 */
export async function repairIndex(
	repository: Repository,
	lock: ObjectLock,
	context: Pick<RunContext, "dryRun">,
): Promise<IndexRepairResult> {
	const found = await repository.recoverUnlistedPacks();
	const rebuiltIndexes = [...repository.uncoveredIndexes];
	const wouldWrite = found.packs.length > 0 || rebuiltIndexes.length > 0;
	let written: string | undefined;
	if (wouldWrite) {
		// A dry run's repository writes through a DryRunDestination: the object is built, never stored.
		repository.beginRun(lock);
		written = await repository.writeRebuiltIndex(found.packs, rebuiltIndexes);
	}
	// Only what it reports asks whether this was a dry run: the object it built was not stored.
	const { dryRun } = context;
	return {
		packsScanned: found.scanned,
		packsRecovered: found.packs.length,
		blobsRecovered: found.blobs,
		unreadablePacks: found.unreadable,
		rebuiltIndexes,
		written: dryRun ? undefined : written,
		wouldWrite,
		lockUntil: lock.until.toISOString(),
		dryRun,
	};
}
