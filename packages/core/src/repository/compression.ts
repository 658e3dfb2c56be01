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

export async function compress(data: Buffer, enabled: boolean): Promise<Buffer> {
	if (enabled && data.length >= 64) {
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
