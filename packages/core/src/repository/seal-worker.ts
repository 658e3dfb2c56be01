import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { parentPort, workerData } from "node:worker_threads";
import { type RestoreRangeRequest, restoreRange } from "../engine/restore-range-work.js";
import { BlobWork, type Regions, type WorkerKeys } from "./blob-work.js";
import { digestFile } from "./pack-file.js";

/** A worker thread of the blob pool: cuts chunks, computes blob IDs, compresses, seals and opens blobs. */
export type PoolRequest =
	| { seq: number; op: "hash"; data: Uint8Array; regions: Regions }
	| { seq: number; op: "chunk"; data: Uint8Array; final: boolean }
	| { seq: number; op: "seal"; data: Uint8Array; regions: Regions; compress: boolean }
	| { seq: number; op: "sealInto"; data: Uint8Array; regions: Regions; compress: boolean; out: Uint8Array; at: number }
	| {
			seq: number;
			op: "hashSealInto";
			data: Uint8Array;
			regions: Regions;
			compress: boolean;
			out: Uint8Array;
			at: number;
	  }
	| { seq: number; op: "digest"; data: Uint8Array }
	| { seq: number; op: "digestFile"; path: string; size: number; md5: boolean }
	| { seq: number; op: "decode"; data: Uint8Array; id: string; what: string }
	| { seq: number; op: "decodeMany"; data: Uint8Array; regions: Regions; ids: readonly string[]; packKey: string }
	| ({ seq: number; op: "restoreRange" } & RestoreRangeRequest);

export type PoolResponse = { seq: number; result: unknown } | { seq: number; error: { code?: string; message: string } };

const work = new BlobWork(workerData as WorkerKeys);

/**
 * A restore opens blobs by the thousand: each leaves a decipher, an HMAC and buffers that
 * this thread's small heap would keep for long, native memory and all. Collecting after
 * every read range or so (a few MiB; a collection of this small heap takes about a
 * millisecond) keeps the process's memory near what is in flight. What counts is the
 * bytes read and opened: counting only the stored bytes let compressed text pile up (mixed
 * restore peak 245–263 MiB, 225–235 MiB counting both).
 */
const COLLECT_EVERY = { blobs: 1024, bytes: 4 * 1024 * 1024 };
let sinceCollect = { blobs: 0, bytes: 0 };
setFlagsFromString("--expose-gc");
const collect = runInNewContext("gc") as ((options?: { type: "minor" | "major" }) => void) | undefined;
const collectYoung = (): void => collect?.({ type: "minor" });

function collectAfter(blobs: number, bytes: number): void {
	sinceCollect = { blobs: sinceCollect.blobs + blobs, bytes: sinceCollect.bytes + bytes };
	if (sinceCollect.blobs < COLLECT_EVERY.blobs && sinceCollect.bytes < COLLECT_EVERY.bytes) return;
	sinceCollect = { blobs: 0, bytes: 0 };
	collect?.();
}

/**
 * Sealing leaves compressed and enciphered copies of every blob behind, and references to
 * buffers the main thread has let go. A full collection costs this thread about as much as
 * sealing a few MiB, so it comes far less often than for opening: every few packs' worth.
 */
const COLLECT_EVERY_SEALED = 32 * 1024 * 1024;
/**
 * The copies are young and their bytes live outside the heap, which grows too little for V8
 * to collect them on its own: a young-generation collection (well under a millisecond)
 * every few MiB sealed keeps them from piling up to tens of MiB per worker.
 */
const COLLECT_YOUNG_EVERY_SEALED = 2 * 1024 * 1024;
let sealedSinceCollect = 0;
let sealedSinceYoung = 0;

function collectAfterSealing(bytes: number): void {
	sealedSinceCollect += bytes;
	sealedSinceYoung += bytes;
	if (sealedSinceCollect >= COLLECT_EVERY_SEALED) {
		sealedSinceCollect = 0;
		sealedSinceYoung = 0;
		collect?.();
	} else if (sealedSinceYoung >= COLLECT_YOUNG_EVERY_SEALED) {
		sealedSinceYoung = 0;
		collectYoung();
	}
}

function sum(lengths: Uint32Array): number {
	let total = 0;
	for (const length of lengths) total += length;
	return total;
}

/** Whole ArrayBuffers of their own, moved back rather than copied. */
function movable(data: Uint8Array): Uint8Array {
	return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : new Uint8Array(data);
}

parentPort?.on("message", (request: PoolRequest) => {
	try {
		if (request.op === "hash") {
			parentPort?.postMessage({ seq: request.seq, result: work.hash(request.data, request.regions) });
		} else if (request.op === "chunk") {
			parentPort?.postMessage({ seq: request.seq, result: work.chunk(request.data, request.final) });
		} else if (request.op === "digestFile") {
			parentPort?.postMessage({ seq: request.seq, result: digestFile(request.path, request.size, request.md5) });
		} else if (request.op === "digest") {
			parentPort?.postMessage({ seq: request.seq, result: work.digest(request.data) });
		} else if (request.op === "seal") {
			const sealed = work.seal(request.data, request.regions, request.compress).map(movable);
			parentPort?.postMessage(
				{ seq: request.seq, result: sealed },
				sealed.map((s) => s.buffer as ArrayBuffer),
			);
		} else if (request.op === "sealInto") {
			const lengths = work.sealInto(request.data, request.regions, request.compress, request.out, request.at);
			parentPort?.postMessage({ seq: request.seq, result: lengths });
			collectAfterSealing(lengths.reduce((sum, length) => sum + length, 0));
		} else if (request.op === "hashSealInto") {
			const result = work.hashSealInto(request.data, request.regions, request.compress, request.out, request.at);
			parentPort?.postMessage({ seq: request.seq, result });
			collectAfterSealing(result.lengths.reduce((sum, length) => sum + length, 0));
		} else if (request.op === "decodeMany") {
			const decoded = work.decodeMany(request.data, request.regions, request.ids, request.packKey);
			parentPort?.postMessage({ seq: request.seq, result: { blobs: decoded.blobs, transfer: [] } }, decoded.transfer);
			collectAfter(request.ids.length, request.data.byteLength);
		} else if (request.op === "restoreRange") {
			const { result, transfer } = restoreRange(work, request);
			parentPort?.postMessage({ seq: request.seq, result }, transfer);
			// The range read and the plaintexts opened from it are both left behind: text opens to several times its stored size.
			collectAfter(request.ids.length, request.data.byteLength + sum(request.rawLengths));
		} else {
			const data = movable(work.decode(request.data, request.id, request.what));
			parentPort?.postMessage({ seq: request.seq, result: data }, [data.buffer as ArrayBuffer]);
		}
	} catch (error) {
		const e = error as { code?: string; message?: string };
		parentPort?.postMessage({
			seq: request.seq,
			error: { ...(e.code ? { code: e.code } : {}), message: e.message ?? String(error) },
		});
	}
});
