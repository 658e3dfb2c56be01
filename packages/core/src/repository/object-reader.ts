import type { ByteRange, Destination, ObjectVersion } from "../destination/destination.js";
import { describeError, HoldfastError } from "../host/errors.js";
import { sha256HexAsync } from "./crypto.js";
import { hashOfKey } from "./format.js";

/**
 * Reads objects the way an attacker holding the backup keys cannot fool: the latest version
 * is tried first, and when it does not verify (garbage written over the key, a delete
 * marker), every other version is tried, locked ones first, until one verifies.
 */
export class ObjectReader {
	constructor(private readonly destination: Destination) {}

	/** A whole content-addressed object whose SHA-256 must equal its name (or pass `verify`). */
	async read<T>(key: string, verify: (bytes: Buffer) => Promise<T>): Promise<T> {
		const expected = hashOfKey(key);
		const accept = async (bytes: Uint8Array) => {
			const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
			// On the libuv pool: a restore hashes every pack it reads, 16 MiB at a time.
			if (expected !== undefined && (await sha256HexAsync(buffer)) !== expected) {
				throw new HoldfastError("CORRUPT", `${key}: content does not match its name`);
			}
			return verify(buffer);
		};
		return this.#withVersions(key, (versionId) => this.destination.get(key, versionId ? { versionId } : {}), accept);
	}

	/** A byte range of an object, accepted when `verify` accepts it (blobs inside packs). */
	async readRange<T>(key: string, range: ByteRange, verify: (bytes: Buffer) => Promise<T>): Promise<T> {
		return this.#withVersions(
			key,
			(versionId) => this.destination.get(key, versionId ? { versionId, range } : { range }),
			async (bytes) => verify(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
		);
	}

	async #withVersions<T>(
		key: string,
		fetch: (versionId?: string) => Promise<Uint8Array>,
		accept: (bytes: Uint8Array) => Promise<T>,
	): Promise<T> {
		let firstError: unknown;
		try {
			return await accept(await fetch());
		} catch (error) {
			firstError = error;
		}
		const versions: ObjectVersion[] = [];
		for await (const version of this.destination.listVersions(key)) {
			if (version.key === key && !version.isDeleteMarker) versions.push(version);
		}
		// Locked versions first (an attacker cannot have written one that outlives ours… but
		// he can add locked garbage, so every candidate is still verified), newest first.
		versions.sort(
			(a, b) => Number(Boolean(b.lock)) - Number(Boolean(a.lock)) || b.lastModified.getTime() - a.lastModified.getTime(),
		);
		for (const version of versions) {
			try {
				return await accept(await fetch(version.versionId));
			} catch {
				// try the next version
			}
		}
		if (versions.length === 0 && isNotFound(firstError)) {
			throw new HoldfastError("NOT_FOUND", `${key}: missing from ${this.destination.description}`, { cause: firstError });
		}
		throw new HoldfastError(
			"CORRUPT",
			`${key}: no version of it verifies (${versions.length} tried; ${describeError(firstError)})`,
			{ cause: firstError },
		);
	}
}

function isNotFound(error: unknown): boolean {
	return typeof error === "object" && error !== null && (error as { code?: string }).code === "NOT_FOUND";
}
