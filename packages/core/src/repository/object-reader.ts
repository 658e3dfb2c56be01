import type { ByteRange, Destination, ObjectVersion } from "../destination/destination.js";
import { classifyFault, type FaultKind } from "../destination/faults.js";
import { describeError, HoldfastError, isHoldfastError } from "../host/errors.js";
import { sha256HexAsync } from "./crypto.js";
import { hashOfKey } from "./format.js";
import { realVersions } from "./object-versions.js";

/**
 * Reads objects the way an attacker holding the backup keys cannot fool: the latest version
 * is tried first, and when it does not verify (garbage written over the key, a delete
 * marker), every other version is tried, locked ones first, until one verifies.
 *
 * A store that could not answer is not a damaged object: the destination's retry layer
 * (`composeDestination`) retries transient faults and then throws UNREACHABLE, which stops
 * the search at once, never read as CORRUPT or NOT_FOUND.
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

	/** Every real version of `key`. */
	async versionsOf(key: string): Promise<ObjectVersion[]> {
		return (await realVersions(this.destination, key)).filter((version) => version.key === key);
	}

	async #withVersions<T>(
		key: string,
		fetch: (versionId?: string) => Promise<Uint8Array>,
		accept: (bytes: Uint8Array) => Promise<T>,
	): Promise<T> {
		const failures: { kind: FaultKind | "corrupt"; error: unknown }[] = [];
		let cannotRead: HoldfastError | undefined;
		const attempt = async (versionId?: string): Promise<{ value: T } | undefined> => {
			let bytes: Uint8Array;
			try {
				bytes = await fetch(versionId);
			} catch (error) {
				const kind = classifyFault(error);
				// The store did not answer: whatever the other versions hold, nothing can be concluded.
				if (kind === "unreachable") throw error;
				failures.push({ kind, error });
				return undefined;
			}
			try {
				return { value: await accept(bytes) };
			} catch (error) {
				if (classifyFault(error) === "unreachable") throw error;
				// An answer about this installation rather than these bytes (no zstd to read them) is kept
				// apart: another version may still read (an attacker's newer one may be what needs zstd).
				if (isHoldfastError(error) && !isHoldfastError(error, "CORRUPT")) cannotRead ??= error;
				else failures.push({ kind: "corrupt", error });
				return undefined;
			}
		};
		const first = await attempt();
		if (first) return first.value;
		const versions = await this.versionsOf(key);
		// Locked versions first (an attacker cannot have written one that outlives ours… but
		// he can add locked garbage, so every candidate is still verified), newest first.
		versions.sort(
			(a, b) => Number(Boolean(b.lock)) - Number(Boolean(a.lock)) || b.lastModified.getTime() - a.lastModified.getTime(),
		);
		for (const version of versions) {
			const found = await attempt(version.versionId);
			if (found) return found.value;
		}
		// No version read, and one could not be read here: that, not damage, is the answer.
		if (cannotRead) throw cannotRead;
		const firstError = failures[0]?.error;
		if (failures.some((f) => f.kind === "corrupt")) {
			throw new HoldfastError(
				"CORRUPT",
				`${key}: no version of it verifies (${versions.length} tried; ${describeError(failures.find((f) => f.kind === "corrupt")?.error)})`,
				{ cause: firstError },
			);
		}
		if (failures.every((f) => f.kind === "not-found")) {
			throw new HoldfastError("NOT_FOUND", `${key}: missing from ${this.destination.description}`, { cause: firstError });
		}
		// Refused or failed some other way: the bytes were never seen, so nothing says they are damaged.
		const refused = failures.every((f) => f.kind === "forbidden" || f.kind === "not-found");
		throw new HoldfastError(
			"DESTINATION",
			`${key}: ${refused ? "reading refused by" : "could not be read from"} ${this.destination.description} (${describeError(firstError)})`,
			{ cause: firstError },
		);
	}
}
