import { type BinaryLike, createHash, hkdfSync, randomBytes, scrypt, webcrypto } from "node:crypto";
import { HoldfastError } from "../host/errors.js";
import { type BlobKeys, blobId } from "./blob-codec.js";

const subtle = webcrypto.subtle;
const NONCE = 12;
const TAG = 16;

export interface ScryptParams {
	readonly N: number;
	readonly r: number;
	readonly p: number;
}

/** ~0.1 s and 32 MiB on this class of machine: slow for a guesser, quick for a user. */
export const DEFAULT_SCRYPT: ScryptParams = Object.freeze({ N: 2 ** 15, r: 8, p: 1 });

export function deriveKey(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
	return new Promise((resolve, reject) =>
		scrypt(password.normalize("NFC"), salt, 32, { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 }, (error, key) =>
			error ? reject(error) : resolve(key),
		),
	);
}

export function sha256Hex(data: BinaryLike): string {
	return createHash("sha256").update(data).digest("hex");
}

/** The same on the libuv pool, for packs: 16 MiB hashed off the main thread. */
export async function sha256HexAsync(data: Uint8Array): Promise<string> {
	return Buffer.from(await subtle.digest("SHA-256", data)).toString("hex");
}

/**
 * Keys of one repository, all derived from one 32-byte master secret: the secret is what the
 * password unlocks, so changing the password rewrites one small key file and no data.
 */
export class RepositoryKeys {
	private constructor(
		readonly master: Buffer,
		private readonly encryption: webcrypto.CryptoKey,
		private readonly blobMac: webcrypto.CryptoKey,
		/** Seeds the chunker's gear table: cut points differ per repository, so chunk sizes leak nothing comparable. */
		readonly chunkerSeed: Buffer,
		/** The same keys as raw bytes, for the blob codec on worker threads. */
		readonly raw: BlobKeys,
	) {}

	static async fromMaster(master: Buffer): Promise<RepositoryKeys> {
		const derive = (info: string) => Buffer.from(hkdfSync("sha256", master, Buffer.alloc(0), info, 32));
		const encryption = await subtle.importKey("raw", derive("holdfast/1 encryption"), "AES-GCM", false, ["encrypt", "decrypt"]);
		const blobMac = await subtle.importKey("raw", derive("holdfast/1 blob-id"), { name: "HMAC", hash: "SHA-256" }, false, [
			"sign",
		]);
		const raw = { encryption: derive("holdfast/1 encryption"), blobMac: derive("holdfast/1 blob-id") };
		return new RepositoryKeys(master, encryption, blobMac, derive("holdfast/1 chunker"), raw);
	}

	static generateMaster(): Buffer {
		return randomBytes(32);
	}

	/** Keyed blob ID: without the key, the provider cannot test whether a known file is stored. */
	blobId(plaintext: Uint8Array): string {
		return blobId(this.raw, plaintext);
	}

	/** nonce ‖ AES-256-GCM(ciphertext ‖ tag). Runs on the libuv pool, so both cores work. */
	async seal(plaintext: Uint8Array): Promise<Buffer> {
		return seal(this.encryption, plaintext);
	}

	async open(sealed: Uint8Array, what: string): Promise<Buffer> {
		return open(this.encryption, sealed, what);
	}
}

export async function importWrappingKey(raw: Buffer): Promise<webcrypto.CryptoKey> {
	return subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

export async function seal(key: webcrypto.CryptoKey, plaintext: Uint8Array): Promise<Buffer> {
	const nonce = randomBytes(NONCE);
	const body = await subtle.encrypt({ name: "AES-GCM", iv: nonce }, key, plaintext);
	return Buffer.concat([nonce, Buffer.from(body)]);
}

export async function open(key: webcrypto.CryptoKey, sealed: Uint8Array, what: string): Promise<Buffer> {
	if (sealed.byteLength < NONCE + TAG) throw new HoldfastError("CORRUPT", `${what}: too short to be sealed data`);
	try {
		const plain = await subtle.decrypt({ name: "AES-GCM", iv: sealed.subarray(0, NONCE) }, key, sealed.subarray(NONCE));
		return Buffer.from(plain);
	} catch (cause) {
		throw new HoldfastError("CORRUPT", `${what}: authentication failed (corrupt or forged)`, { cause });
	}
}

export const SEAL_OVERHEAD = NONCE + TAG;
