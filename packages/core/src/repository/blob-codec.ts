import { createCipheriv, createDecipheriv, createHmac, randomFillSync } from "node:crypto";
import { HoldfastError } from "../host/errors.js";
import { type BodyKind, CODEC, decompress, decompressInto, encodeBody } from "./compression.js";
import type { Scratch } from "./scratch.js";

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
 * nonce ‖ AES-256-GCM(parts…) ‖ tag, written into one buffer: the sealing of every object of
 * the format (blobs, index, snapshots, config, the key file's wrapped secret).
 */
export function seal(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
	const length = parts.reduce((sum, part) => sum + part.length, 0);
	const out = Buffer.allocUnsafeSlow(NONCE + length + TAG);
	sealInto(key, out, 0, parts);
	return out;
}

/**
 * Encrypted and decrypted a piece at a time: OpenSSL's output for each piece is a buffer of its
 * own, and past 128 KiB every one of them is fresh memory from the system (a page fault per 4
 * KiB), which made decryption of 1 MiB blobs in one piece take 1.6 times as long as in 64 KiB pieces.
 */
const CIPHER_PIECE = 64 * 1024;

/** Random bytes nonces are taken from, a nonce's worth once each: one call to the generator per few hundred blobs. */
const nonces = Buffer.allocUnsafeSlow(NONCE * 340);
let noncesUsed = nonces.length;

function writeNonce(out: Uint8Array, at: number): void {
	if (noncesUsed + NONCE > nonces.length) {
		randomFillSync(nonces);
		noncesUsed = 0;
	}
	out.set(nonces.subarray(noncesUsed, noncesUsed + NONCE), at);
	noncesUsed += NONCE;
}

/** The same written into `out` at `at` (room is the caller's to check); returns the sealed length. */
function sealInto(key: Uint8Array, out: Uint8Array, at: number, parts: readonly Uint8Array[]): number {
	const start = at;
	writeNonce(out, at);
	const cipher = createCipheriv("aes-256-gcm", key, out.subarray(at, at + NONCE));
	at += NONCE;
	for (const part of parts) {
		for (let from = 0; from < part.length; from += CIPHER_PIECE) {
			const piece = cipher.update(part.subarray(from, Math.min(part.length, from + CIPHER_PIECE)));
			out.set(piece, at);
			at += piece.length;
		}
	}
	const rest = cipher.final();
	out.set(rest, at);
	at += rest.length;
	out.set(cipher.getAuthTag(), at);
	return at + TAG - start;
}

/** Bytes a sealed blob may take beyond its plaintext: nonce, codec byte and tag (a body is never larger than the data). */
export const BLOB_OVERHEAD = NONCE + 1 + TAG;

/** The codec byte in front of a body, one buffer per codec rather than one per blob. */
const CODEC_BYTE = [Buffer.of(0), Buffer.of(1), Buffer.of(2), Buffer.of(3)];

export function open(key: Uint8Array, sealed: Uint8Array, what: string): Buffer {
	if (sealed.length < NONCE + TAG) throw new HoldfastError("CORRUPT", `${what}: too short to be sealed data`);
	try {
		const decipher = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, NONCE));
		decipher.setAuthTag(sealed.subarray(sealed.length - TAG));
		const plain = decipher.update(sealed.subarray(NONCE, sealed.length - TAG));
		const rest = decipher.final();
		// GCM gives everything from update: no second copy of a large blob for an empty final.
		return rest.length === 0 ? plain : Buffer.concat([plain, rest]);
	} catch (cause) {
		throw new HoldfastError("CORRUPT", `${what}: authentication failed (corrupt or forged)`, { cause });
	}
}

/** A blob as stored: seal(codec byte ‖ body). Synchronous, for worker threads (and tests, which run it inline). */
export function encodeBlob(keys: BlobKeys, data: Uint8Array, compress: boolean, kind: BodyKind = "data"): Uint8Array {
	const { codec, body } = encodeBody(data, compress, kind);
	return seal(keys.encryption, Buffer.of(codec), body);
}

/**
 * The same sealed into `out` at `at`, without a buffer of its own: a worker seals into the
 * pack where the blob will be stored. `out` must have BLOB_OVERHEAD bytes beyond the data's
 * length free at `at`. With `scratch`, a compressed body is made there. Returns the sealed length.
 */
export function encodeBlobInto(
	keys: BlobKeys,
	data: Uint8Array,
	compress: boolean,
	out: Uint8Array,
	at: number,
	scratch?: Scratch,
): number {
	if (at + data.length + BLOB_OVERHEAD > out.length) throw new RangeError("blob codec: no room to seal into");
	const { codec, body } = encodeBody(data, compress, "data", scratch);
	return sealInto(keys.encryption, out, at, [CODEC_BYTE[codec] ?? Buffer.of(codec), body]);
}

/**
 * `decodeBlob` into `into`, exactly the blob's length as the index gives it, with no buffer
 * of its own: a stored body is decrypted straight into place, a compressed one into `scratch`
 * and decompressed from there. `into` holds the blob only once this returns; after an error,
 * anything.
 */
export function decodeBlobInto(
	keys: BlobKeys,
	sealed: Uint8Array,
	expectedId: string,
	what: string,
	into: Uint8Array,
	scratch: Scratch,
): void {
	if (sealed.length < NONCE + 1 + TAG) throw new HoldfastError("CORRUPT", `${what}: too short to be sealed data`);
	const end = sealed.length - TAG;
	let codec: number;
	let body: Uint8Array;
	try {
		const decipher = createDecipheriv("aes-256-gcm", keys.encryption, sealed.subarray(0, NONCE));
		decipher.setAuthTag(sealed.subarray(end));
		// GCM is a stream: the codec byte alone comes out of its own update, and says where the rest goes.
		codec = decipher.update(sealed.subarray(NONCE, NONCE + 1))[0] as number;
		const length = end - NONCE - 1;
		body = codec === CODEC.stored && length === into.length ? into : scratch.take(length);
		for (let at = NONCE + 1, to = 0; at < end; at += CIPHER_PIECE) {
			const piece = decipher.update(sealed.subarray(at, Math.min(end, at + CIPHER_PIECE)));
			body.set(piece, to);
			to += piece.length;
		}
		decipher.final();
	} catch (cause) {
		throw new HoldfastError("CORRUPT", `${what}: authentication failed (corrupt or forged)`, { cause });
	}
	if (body !== into) decompressInto(codec, body, what, into);
	if (blobId(keys, into) !== expectedId) throw new HoldfastError("CORRUPT", `${what}: content does not match its ID`);
}

/** Opens, decompresses and verifies a stored blob against the ID it must have; `rawLength` (from the index) sizes the output. */
export function decodeBlob(keys: BlobKeys, sealed: Uint8Array, expectedId: string, what: string, rawLength?: number): Uint8Array {
	const data = decompress(open(keys.encryption, sealed, what), what, rawLength);
	if (blobId(keys, data) !== expectedId) throw new HoldfastError("CORRUPT", `${what}: content does not match its ID`);
	return data;
}
