import { createCipheriv, createDecipheriv, createHmac, randomBytes } from "node:crypto";
import { HoldfastError } from "../host/errors.js";
import { decompress, encodeBody } from "./compression.js";

/** The raw key material a blob codec needs; handed to worker threads once, at start. */
export interface BlobKeys {
	readonly encryption: Uint8Array;
	readonly blobMac: Uint8Array;
}

const NONCE = 12;
const TAG = 16;

export function blobId(keys: BlobKeys, data: Uint8Array): string {
	return createHmac("sha256", keys.blobMac).update(data).digest("hex");
}

/**
 * A blob as stored: nonce ‖ AES-256-GCM(codec byte ‖ body) ‖ tag. Synchronous, for worker
 * threads (and tests, which run it inline): the same bytes `RepositoryKeys.seal(compress(…))` makes.
 */
export function encodeBlob(keys: BlobKeys, data: Uint8Array, compress: boolean): Uint8Array {
	const { codec, body } = encodeBody(data, compress);
	const nonce = randomBytes(NONCE);
	const out = Buffer.allocUnsafeSlow(NONCE + 1 + body.length + TAG);
	nonce.copy(out, 0);
	const cipher = createCipheriv("aes-256-gcm", keys.encryption, nonce);
	let at = NONCE;
	at += cipher.update(Buffer.of(codec)).copy(out, at);
	at += cipher.update(body).copy(out, at);
	at += cipher.final().copy(out, at);
	cipher.getAuthTag().copy(out, at);
	return out;
}

/** Opens, decompresses and verifies a stored blob against the ID it must have. */
export function decodeBlob(keys: BlobKeys, sealed: Uint8Array, expectedId: string, what: string): Uint8Array {
	if (sealed.length < NONCE + TAG + 1) throw new HoldfastError("CORRUPT", `${what}: too short to be sealed data`);
	let plain: Buffer;
	try {
		const decipher = createDecipheriv("aes-256-gcm", keys.encryption, sealed.subarray(0, NONCE));
		decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
		plain = Buffer.concat([decipher.update(sealed.subarray(NONCE, sealed.length - TAG)), decipher.final()]);
	} catch (cause) {
		throw new HoldfastError("CORRUPT", `${what}: authentication failed (corrupt or forged)`, { cause });
	}
	const data = decompress(plain, what);
	if (blobId(keys, data) !== expectedId) throw new HoldfastError("CORRUPT", `${what}: content does not match its ID`);
	return data;
}
