import { describeError, isHoldfastError } from "../host/errors.js";
import { concurrencyLimit } from "../host/semaphore.js";
import type { Repository } from "../repository/repository.js";
import type { BlobRenewal, RunContext } from "./run-types.js";

export interface RenewalResult {
	blobs: number;
	/** Sealed bytes copied. */
	bytes: number;
	/** Blobs that could not be read: their snapshots are damaged already; a warning each. */
	unreadable: string[];
}

/** Whole packs are read when at least this share of one is renewed; ranged reads otherwise. */
const WHOLE_PACK_SHARE = 0.25;

/**
 * Carries out the lock step's renewals: each blob's sealed bytes are read from the pack it is
 * in, verified (authentication and keyed ID), and copied as they are into a new pack written
 * with the run's lock. No plaintext is needed and nothing is re-encrypted.
 */
export async function applyRenewals(
	repository: Repository,
	renewals: readonly BlobRenewal[],
	context: Pick<RunContext, "logger">,
): Promise<RenewalResult> {
	const byPack = new Map<string, BlobRenewal[]>();
	for (const renewal of renewals) {
		const list = byPack.get(renewal.from) ?? [];
		list.push(renewal);
		byPack.set(renewal.from, list);
	}
	const result: RenewalResult = { blobs: 0, bytes: 0, unreadable: [] };
	// A dry run reads and verifies the blobs like a real one; its destination drops the new packs.
	const limit = concurrencyLimit(2);
	await Promise.all(
		[...byPack].map(([packKey, list]) =>
			limit(async () => {
				const locations = list.flatMap(({ id, lock }) => {
					const location = repository.index.blobs.get(id);
					return location && location.packKey === packKey ? [{ id, lock, location }] : [];
				});
				const renewedBytes = locations.reduce((sum, { location }) => sum + location.length, 0);
				const packSize = repository.index.packs.get(packKey)?.size ?? Number.POSITIVE_INFINITY;
				let whole: Buffer | undefined;
				if (renewedBytes >= packSize * WHOLE_PACK_SHARE) {
					whole = await repository.loadPack(packKey).catch((error: unknown) => {
						if (!isHoldfastError(error, "CORRUPT") && !isHoldfastError(error, "NOT_FOUND")) throw error;
						return undefined; // some blobs may still verify through ranged reads of other versions
					});
				}
				for (const { id, lock, location } of locations) {
					const what = `blob ${id.slice(0, 16)} in ${packKey}`;
					try {
						let sealed: Buffer;
						if (whole) {
							sealed = whole.subarray(location.offset, location.offset + location.length);
							await repository.decodeBlob(sealed, id, what);
						} else sealed = await repository.readSealedBlob(id, location);
						await repository.copySealedBlob(location.type, id, Buffer.from(sealed), location.rawLength, { lock });
						result.blobs++;
						result.bytes += sealed.length;
					} catch (error) {
						if (!isHoldfastError(error, "CORRUPT") && !isHoldfastError(error, "NOT_FOUND")) throw error;
						result.unreadable.push(id);
						context.logger.warn(`${what}: cannot be renewed: ${describeError(error)}`);
					}
				}
			}),
		),
	);
	return result;
}
