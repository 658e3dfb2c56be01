import { promisify } from "node:util";
import { constants, deflateRaw, inflateRaw } from "node:zlib";
import { HoldfastError } from "../host/errors.js";

const deflate = promisify(deflateRaw);
const inflate = promisify(inflateRaw);

/**
 * Codec byte in front of every blob's plaintext. Format 1 writes 0 (stored) or 1 (raw
 * deflate, level 1, on the libuv pool). zstd gets its own byte when every supported Node
 * can read it; a repository stays readable on every Node the project supports.
 */
export const CODEC = Object.freeze({ stored: 0, deflate: 1 });

/** Data that does not shrink by this much is stored as is: it was already compressed. */
const WORTH_IT = 0.95;
/** A probe of this size decides for a large blob whether compressing it is worth the CPU. */
const PROBE = 64 * 1024;
/** Bytes looked at to estimate entropy; random or already-compressed data is near 8 bits a byte. */
const SAMPLE = 8 * 1024;
const INCOMPRESSIBLE_BITS = 7.2;

/**
 * Order-0 entropy of a sample, in bits per byte. DEFLATE on random data runs at a few tens
 * of MB/s, so data that looks random is stored without trying.
 */
export function sampleEntropy(data: Uint8Array): number {
	const length = Math.min(data.length, SAMPLE);
	const counts = new Uint32Array(256);
	// Spread over the blob: a header or padding at its start should not decide alone.
	const stride = Math.max(1, Math.floor(data.length / length));
	for (let i = 0, at = 0; i < length; i++, at += stride) counts[data[at] as number]++;
	let bits = 0;
	for (const count of counts) {
		if (count === 0) continue;
		const p = count / length;
		bits -= p * Math.log2(p);
	}
	return bits;
}

export async function compress(data: Buffer, enabled: boolean): Promise<Buffer> {
	if (enabled && data.length >= 64) {
		if (data.length >= 1024 && sampleEntropy(data) > INCOMPRESSIBLE_BITS) return frame(CODEC.stored, data);
		if (data.length > PROBE * 2) {
			const probe = await deflate(data.subarray(0, PROBE), { level: 1 });
			if (probe.length > PROBE * WORTH_IT) return frame(CODEC.stored, data);
		}
		const packed = await deflate(data, { level: 1, strategy: constants.Z_DEFAULT_STRATEGY });
		if (packed.length < data.length * WORTH_IT) return frame(CODEC.deflate, packed);
	}
	return frame(CODEC.stored, data);
}

export async function decompress(framed: Buffer, what: string): Promise<Buffer> {
	const codec = framed[0];
	const body = framed.subarray(1);
	if (codec === CODEC.stored) return body;
	if (codec === CODEC.deflate) {
		try {
			return await inflate(body);
		} catch (cause) {
			throw new HoldfastError("CORRUPT", `${what}: cannot decompress`, { cause });
		}
	}
	throw new HoldfastError("CORRUPT", `${what}: unknown compression codec ${String(codec)}`);
}

function frame(codec: number, body: Buffer): Buffer {
	return Buffer.concat([Buffer.of(codec), body]);
}
