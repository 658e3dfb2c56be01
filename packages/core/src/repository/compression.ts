import { once } from "node:events";
import { createRequire } from "node:module";
import * as zlib from "node:zlib";
import {
	brotliCompressSync,
	brotliDecompressSync,
	constants,
	createBrotliCompress,
	deflateRawSync,
	inflateRawSync,
} from "node:zlib";
import { HoldfastError } from "../host/errors.js";

/**
 * Codec byte in front of every blob's plaintext. Writers use 3 (zstd, level ZSTD_LEVEL) for
 * file content: on the benchmark's data it takes a third of the CPU of DEFLATE at level 4 on
 * small text and 0.6 of Brotli at quality 1 on large blobs, which it stores 11 % smaller. Trees
 * get 2 (Brotli, TREE_QUALITY); snapshots, index and config objects 1 (raw DEFLATE, level 4)
 * under SMALL_BODY bytes and 2 (Brotli, quality 1) from there, so `snapshots` and the index
 * need no zstd, and a reader without it still lists and restores the trees of any snapshot.
 * Without zstd (its module did not load) data is written that way too.
 */
export const CODEC = Object.freeze({ stored: 0, deflate: 1, brotli: 2, zstd: 3 });

/** What a body holds: file content, a tree, or a small object of the repository (snapshot, index, config). */
export type BodyKind = "data" | "tree" | "object";

/**
 * zstd's level for file content: restic's default too. Level 4 stores the benchmark's small
 * text files 8 % smaller, as DEFLATE at level 4 does, for 2.4 times level 3's CPU; on blobs of
 * 16 KiB and more it stores the same bytes as level 3.
 */
const ZSTD_LEVEL = 3;

/** zstd, one compression and one decompression context per thread, reused blob after blob. */
interface Zstd {
	compress(data: Uint8Array): Uint8Array;
	/** Compresses into `into`, at least `bound(data.length)` long; the bytes written. */
	compressInto(data: Uint8Array, into: Uint8Array): number;
	/** The most a compression of `length` bytes can take. */
	bound(length: number): number;
	/** Decompresses into `into`, which must hold all of it (else zstd fails); the bytes written. */
	decompressInto(data: Uint8Array, into: Uint8Array): number;
	/** What the first frame's header says it holds; null when it does not say. */
	declaredSize(data: Uint8Array): number | null;
}

/** Loaded at the first blob that needs it: null when its module could not be (then `zstdFailure` says why). */
let zstd: Zstd | null | undefined;
let zstdFailure: string | undefined;

/**
 * The zstd-napi module (zstd's own C library, built at install as better-sqlite3 is): Node 20
 * has no zstd, and Node 22's zlib makes a context per call, which costs more than a small
 * blob's compression.
 */
function loadZstd(): Zstd | null {
	if (zstd !== undefined) return zstd;
	try {
		const require = createRequire(import.meta.url);
		const module = require("zstd-napi") as typeof import("zstd-napi");
		// Its native calls, for a decompression into a buffer of the size the index gives: the
		// module's own `decompress` allocates what the frame's header declares, unchecked.
		const binding = require("zstd-napi/binding.js") as typeof import("zstd-napi/binding.js");
		const compressor = new module.Compressor();
		compressor.setParameters({ compressionLevel: ZSTD_LEVEL });
		const context = new binding.DCtx();
		// Its native call too, into a buffer the thread keeps: the module's own allocates one per blob.
		const into = new binding.CCtx();
		into.setParameter(binding.CParameter.compressionLevel, ZSTD_LEVEL);
		zstd = {
			compress: (data) => compressor.compress(asBuffer(data)),
			compressInto: (data, out) => into.compress2(out, data),
			bound: (length) => binding.compressBound(length),
			decompressInto: (data, into) => context.decompress(into, data),
			declaredSize: (data) => binding.getFrameContentSize(data),
		};
	} catch (error) {
		zstdFailure = (error as Error).message?.split("\n")[0] ?? String(error);
		zstd = null;
	}
	return zstd;
}

/** Why zstd cannot be used on this thread, or undefined when it can. */
export function zstdUnavailable(): string | undefined {
	return loadZstd() ? undefined : (zstdFailure ?? "unknown");
}

function asBuffer(data: Uint8Array): Buffer {
	return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The most a zstd body may hold: what a catalog's packed tree may declare, and far above any blob the chunker cuts. */
const MAX_UNSIZED_ZSTD = 256 * 1024 * 1024;

/**
 * zstd's frame as written, read by zstd-napi, else by Node's own zstd (Node 22.15 and later),
 * into a buffer of `expectedLength` bytes (the index's length of the blob), else of what the
 * frame declares up to MAX_UNSIZED_ZSTD: a body that would make more, or other than that, is
 * damaged, and memory is never sized by the body alone.
 */
function unzstd(body: Uint8Array, what: string, expectedLength?: number): Buffer {
	const loaded = loadZstd();
	if (expectedLength !== undefined && expectedLength > MAX_UNSIZED_ZSTD) {
		throw new HoldfastError("CORRUPT", `${what}: the index gives ${expectedLength} bytes, more than a blob holds`);
	}
	const size = expectedLength ?? declaredSize(loaded, body, what);
	if (loaded) {
		const out = Buffer.allocUnsafe(size);
		const written = loaded.decompressInto(body, out);
		if (written !== size) throw new HoldfastError("CORRUPT", `${what}: holds ${written} bytes, not ${size}`);
		return out;
	}
	const own = (zlib as { zstdDecompressSync?: (data: Uint8Array, options: { maxOutputLength: number }) => Buffer })
		.zstdDecompressSync;
	if (own) {
		// Past the limit it fails: one byte more than expected tells a longer body from an exact one.
		const out = own(body, { maxOutputLength: expectedLength === undefined ? size : size + 1 });
		if (expectedLength !== undefined && out.length !== size) {
			throw new HoldfastError("CORRUPT", `${what}: holds ${out.length} bytes, not ${size}`);
		}
		return out;
	}
	// Not damage: the data is fine, this installation cannot read it.
	throw new HoldfastError(
		"PLUGIN_LOAD",
		`${what}: is compressed with zstd, and the zstd-napi module did not load (${zstdFailure}): reinstall holdfast on this machine (npm ci builds it)`,
	);
}

/** The size a zstd body declares, within bounds; without zstd-napi, the bound (Node's zstd stops there). */
function declaredSize(loaded: Zstd | null, body: Uint8Array, what: string): number {
	if (!loaded) return MAX_UNSIZED_ZSTD;
	let declared: number | null;
	try {
		declared = loaded.declaredSize(body);
	} catch (cause) {
		throw new HoldfastError("CORRUPT", `${what}: not a zstd frame`, { cause });
	}
	if (declared === null || declared > MAX_UNSIZED_ZSTD) {
		throw new HoldfastError("CORRUPT", `${what}: zstd frame declares ${declared ?? "no"} size`);
	}
	return declared;
}

/**
 * Below this, DEFLATE at level 4 takes 10 to 15 % fewer bytes than Brotli at quality 1: 12 %
 * on JavaScript, TypeScript, JSON and Markdown files of 2 to 16 KiB, 10 % on /usr/share's files
 * of that size, 13 % on the benchmark's small files, for 1.4 to 2.2 times Brotli's CPU (a few
 * µs a blob). From 16 KiB on its lead over Brotli at quality 2 is 2 % for twice the CPU.
 */
export const SMALL_BODY = 16 * 1024;
/** Under 2 KiB a smaller window and hash table: the same bytes, less memory to set up per blob. */
const TINY_BODY = 2 * 1024;
const TINY_DEFLATE = Object.freeze({ level: 4, windowBits: 11, memLevel: 4, chunkSize: TINY_BODY });
const SMALL_DEFLATE = Object.freeze({ level: 4, windowBits: 14, chunkSize: SMALL_BODY });
/** Trees (JSON, blob IDs in hex) take 5 to 11 % fewer bytes at quality 2 than at 1, for about the same CPU. */
const TREE_QUALITY = 2;

/** Data that does not shrink by this much is stored as is: it was already compressed. */
const WORTH_IT = 0.95;
/** A probe of this size decides for a large blob whether compressing it is worth the CPU. */
const PROBE = 64 * 1024;
/**
 * Bytes looked at to estimate entropy: RUNS runs of RUN bytes spread over the blob. Random
 * bytes measure 7.82 bits a byte on average at this size; text measures near 4.5. Every blob
 * of a small-file backup is measured, so the count is kept small: at 4 KiB it was a tenth of
 * a sealing worker's CPU.
 */
const RUN = 256;
const RUNS = 4;
const SAMPLE = RUN * RUNS;
const INCOMPRESSIBLE_BITS = 7.2;
/** From this length a sample decides: random data's measures at least 7.44 bits at 512 bytes (20,000 tries), so none is tried in vain. */
const SAMPLED_FROM = 512;
/** Below this a blob compresses for sure (text is near 4.5 bits a byte): no probe first. */
const COMPRESSIBLE_BITS = 6;

/** Byte counts of a sample, one table per thread, cleared per call: no allocation per blob. */
const counts = new Uint32Array(256);
/** c·log2(c) for every count a sample can hold: no logarithm per byte value. */
const COUNT_BITS = Float64Array.from({ length: SAMPLE + 1 }, (_, count) => (count > 1 ? count * Math.log2(count) : 0));

/**
 * Order-0 entropy of a sample, in bits per byte. Compressors crawl on random data, so data
 * that looks random is stored without trying.
 */
export function sampleEntropy(data: Uint8Array): number {
	if (data.length === 0) return 0;
	counts.fill(0);
	let length = 0;
	if (data.length <= SAMPLE) {
		for (let at = 0; at < data.length; at++) counts[data[at] as number]!++;
		length = data.length;
	} else {
		// Runs spread over the blob: a header or padding at its start should not decide alone, and
		// runs (not single bytes at a stride) do not alias with data that repeats at the stride.
		const gap = Math.floor((data.length - RUN) / (RUNS - 1));
		for (let run = 0; run < RUNS; run++) {
			const start = run * gap;
			for (let at = start; at < start + RUN; at++) counts[data[at] as number]!++;
		}
		length = SAMPLE;
	}
	// H = log2(n) - Σ c·log2(c) / n.
	let sum = 0;
	for (let value = 0; value < 256; value++) sum += COUNT_BITS[counts[value] as number] as number;
	return Math.log2(length) - sum / length;
}

/** Brotli's smallest and default window, as powers of two. */
const MIN_WINDOW_BITS = 10;
const WINDOW_BITS = 22;

function brotli(data: Uint8Array, quality = 1): Buffer {
	return brotliCompressSync(data, {
		params: {
			[constants.BROTLI_PARAM_QUALITY]: quality,
			[constants.BROTLI_PARAM_SIZE_HINT]: data.length,
			// A window no larger than the data: the same matches, and the encoder sets up buffers for
			// the data, not for a 4 MiB window, for each tree of a few KiB.
			[constants.BROTLI_PARAM_LGWIN]: Math.min(WINDOW_BITS, Math.max(MIN_WINDOW_BITS, Math.ceil(Math.log2(data.length + 1)))),
		},
	});
}

/** `packed` under `codec` when it saves enough, else the data as is. */
function smaller(data: Uint8Array, codec: number, packed: Uint8Array): { codec: number; body: Uint8Array } {
	return packed.length < data.length * WORTH_IT ? { codec, body: packed } : { codec: CODEC.stored, body: data };
}

/**
 * The codec and body to store for `data`: compressed when that pays, as is otherwise. With
 * `scratch`, a zstd body is made there (valid until the scratch is next used), not in a buffer
 * of its own.
 */
export function encodeBody(
	data: Uint8Array,
	enabled: boolean,
	kind: BodyKind = "data",
	scratch?: { take(length: number): Uint8Array },
): { codec: number; body: Uint8Array } {
	if (!enabled || data.length < 64) return { codec: CODEC.stored, body: data };
	const bits = data.length >= SAMPLED_FROM ? sampleEntropy(data) : 0;
	if (bits > INCOMPRESSIBLE_BITS) return { codec: CODEC.stored, body: data };
	if (kind === "tree") return smaller(data, CODEC.brotli, brotli(data, TREE_QUALITY));
	const packer = kind === "data" ? loadZstd() : null;
	if (packer) {
		// No probe first: zstd goes through data it cannot shrink at several hundred MB/s.
		if (!scratch) return smaller(data, CODEC.zstd, packer.compress(data));
		const into = scratch.take(packer.bound(data.length));
		return smaller(data, CODEC.zstd, into.subarray(0, packer.compressInto(data, into)));
	}
	if (data.length < SMALL_BODY) {
		return smaller(data, CODEC.deflate, deflateRawSync(data, data.length < TINY_BODY ? TINY_DEFLATE : SMALL_DEFLATE));
	}
	// The probe's bytes are compressed twice when the blob is worth it: only where the sample leaves doubt.
	if (bits >= COMPRESSIBLE_BITS && data.length > PROBE * 2 && brotli(data.subarray(0, PROBE)).length > PROBE * WORTH_IT) {
		return { codec: CODEC.stored, body: data };
	}
	return smaller(data, CODEC.brotli, brotli(data));
}

/**
 * A text of the catalog (a cached tree's JSON) compressed with zstd, for a catalog a few times
 * smaller; undefined without zstd or when it would not shrink by 5 %.
 */
export function packText(text: Uint8Array): Uint8Array | undefined {
	const packed = loadZstd()?.compress(text);
	return packed && packed.length < text.length * WORTH_IT ? packed : undefined;
}

/** What `packText` made, as the text again. */
export function unpackText(packed: Uint8Array, what: string): Buffer {
	return unzstd(packed, what);
}

/** Codec byte and body in one buffer: the plaintext of small sealed objects (index, snapshot, config). */
export function compress(data: Buffer, enabled: boolean): Buffer {
	const { codec, body } = encodeBody(data, enabled, "object");
	return Buffer.concat([Buffer.of(codec), body]);
}

/**
 * `compress` for a text made of many pieces: Brotli at quality 1 over each piece in turn, so
 * neither the whole text nor a buffer of it is held at once. Always Brotli: the text this is
 * for (an index object's JSON) is hex and digits, which it halves.
 */
export async function compressPieces(pieces: Iterable<string>): Promise<Buffer> {
	const stream = createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: 1 } });
	const out: Buffer[] = [Buffer.of(CODEC.brotli)];
	stream.on("data", (chunk: Buffer) => out.push(chunk));
	const ended = once(stream, "end");
	for (const piece of pieces) {
		// One piece at a time: a write's callback comes once Brotli has taken it in.
		await new Promise<void>((resolve, reject) => stream.write(piece, (error) => (error ? reject(error) : resolve())));
	}
	stream.end();
	await ended;
	return Buffer.concat(out);
}

/** Largest output buffer sized up front from an expected length: a wrong length in the index allocates no more. */
const MAX_SIZED_OUTPUT = 16 * 1024 * 1024;

/**
 * The body behind the codec byte, as stored. `expectedLength` (the index's plaintext length)
 * sizes Brotli's output buffer: one allocation of the right size per blob, not 16 KiB each
 * (many small blobs) or many pieces joined (large ones).
 */
export function decompress(framed: Uint8Array, what: string, expectedLength?: number): Buffer {
	return decompressBody(framed[0], framed.subarray(1), what, expectedLength);
}

/**
 * A body of `codec` decompressed into `into`, which is exactly as long as the blob (the index
 * says how long): zstd writes straight there, other codecs are copied in. A body that makes
 * more bytes or fewer is damaged.
 */
export function decompressInto(codec: number, body: Uint8Array, what: string, into: Uint8Array): void {
	let written: number;
	if (codec === CODEC.stored) {
		if (body.length === into.length && body !== into) into.set(body);
		written = body.length;
	} else if (codec === CODEC.zstd && loadZstd()) {
		try {
			written = (loadZstd() as Zstd).decompressInto(body, into);
		} catch (cause) {
			throw new HoldfastError("CORRUPT", `${what}: cannot decompress`, { cause });
		}
	} else {
		const out = decompressBody(codec, body, what, into.length);
		if (out.length === into.length) into.set(out);
		written = out.length;
	}
	if (written !== into.length)
		throw new HoldfastError("CORRUPT", `${what}: ${written} bytes where the index says ${into.length}`);
}

function decompressBody(codec: number | undefined, body: Uint8Array, what: string, expectedLength?: number): Buffer {
	try {
		if (codec === CODEC.stored) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
		if (codec === CODEC.brotli) {
			if (expectedLength === undefined) return brotliDecompressSync(body);
			// One byte of room beyond: a full buffer makes zlib allocate another chunk to learn the stream has ended.
			return brotliDecompressSync(body, { chunkSize: Math.max(64, Math.min(expectedLength + 1, MAX_SIZED_OUTPUT)) });
		}
		if (codec === CODEC.deflate) return inflateRawSync(body);
		if (codec === CODEC.zstd) return unzstd(body, what, expectedLength);
	} catch (cause) {
		if (cause instanceof HoldfastError) throw cause;
		throw new HoldfastError("CORRUPT", `${what}: cannot decompress`, { cause });
	}
	throw new HoldfastError("CORRUPT", `${what}: unknown compression codec ${String(codec)}`);
}
