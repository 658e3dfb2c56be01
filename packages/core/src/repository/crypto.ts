import { type BinaryLike, createHash, hkdfSync, randomBytes } from "node:crypto";
import { type BlobKeys, blobId, open, seal } from "./blob-codec.js";

export function sha256Hex(data: BinaryLike): string {
	return createHash("sha256").update(data).digest("hex");
}

/** Hashed in pieces of this size, the event loop let run between them. */
const HASH_PIECE = 1024 * 1024;

/**
 * The same for large inputs (packs, 16 MiB) a piece at a time, letting other work run in
 * between. Not WebCrypto's digest on the libuv pool: it hashes a copy of its input, and a
 * check --read-data of 50,000 small files held that copy beside each pack (58 MiB of
 * buffers at its peak).
 */
export async function sha256HexAsync(data: Uint8Array): Promise<string> {
	const hash = createHash("sha256");
	for (let at = 0; at < data.byteLength; at += HASH_PIECE) {
		if (at > 0) await new Promise((resolve) => setImmediate(resolve));
		hash.update(data.subarray(at, at + HASH_PIECE));
	}
	return hash.digest("hex");
}

/**
 * Keys of one repository, all derived from one 32-byte master secret: the secret is what the
 * password unlocks, so changing the password rewrites one small key file and no data.
 */
export class RepositoryKeys {
	private constructor(
		readonly master: Buffer,
		/** Seeds the chunker's gear table: cut points differ per repository, so chunk sizes leak nothing comparable. */
		readonly chunkerSeed: Buffer,
		/** Encryption and blob-ID keys as raw bytes, also for the blob codec on worker threads. */
		readonly raw: BlobKeys,
		/** MACs what the local catalog caches, so a damaged or foreign cached value is never trusted. */
		readonly catalogMac: Buffer,
	) {}

	static fromMaster(master: Buffer): RepositoryKeys {
		const derive = (info: string) => Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), info, 32));
		const raw = { encryption: derive("holdfast/1 encryption"), blobMac: derive("holdfast/1 blob-id") };
		return new RepositoryKeys(master, derive("holdfast/1 chunker"), raw, derive("holdfast/1 catalog"));
	}

	static generateMaster(): Buffer {
		return randomBytes(32);
	}

	/** Keyed blob ID: without the key, the provider cannot test whether a known file is stored. */
	blobId(plaintext: Uint8Array): string {
		return blobId(this.raw, plaintext);
	}

	seal(plaintext: Uint8Array): Buffer {
		return seal(this.raw.encryption, plaintext);
	}

	open(sealed: Uint8Array, what: string): Buffer {
		return open(this.raw.encryption, sealed, what);
	}
}
