import { parentPort, workerData } from "node:worker_threads";
import { type LocalReads, readLocalFiles } from "../engine/backup/local-file-reads.js";
import { type ContentCheck, holdsContent } from "../engine/restore-existing-content.js";
import { type RestoreRangeRequest, restoreRange } from "../engine/restore-range-work.js";
import { collectGarbage } from "../host/collector.js";
import { yieldToMainThread } from "../host/thread-priority.js";
import { BlobWork, type Regions, type WorkerKeys } from "./blob-work.js";
import type { BodyKind } from "./compression.js";
import { digestFile } from "./pack-file.js";

/** A worker thread of the blob pool: reads small files, cuts chunks, computes blob IDs, compresses, seals and opens blobs. */
export type PoolRequest =
	| { seq: number; op: "hash"; data: Uint8Array; regions: Regions }
	| { seq: number; op: "chunk"; data: Uint8Array; final: boolean }
	| { seq: number; op: "seal"; data: Uint8Array; regions: Regions; compress: boolean; kind: BodyKind }
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
	| { seq: number; op: "readLocal"; data: Uint8Array; reads: LocalReads }
	| { seq: number; op: "digestFile"; path: string; size: number; md5: boolean }
	| { seq: number; op: "decode"; data: Uint8Array; id: string; what: string }
	| ({ seq: number; op: "restoreRange" } & RestoreRangeRequest)
	| ({ seq: number; op: "holdsContent" } & ContentCheck);

export type PoolResponse = { seq: number; result: unknown } | { seq: number; error: { code?: string; message: string } };

yieldToMainThread();
const work = new BlobWork(workerData as WorkerKeys);

/** How often to collect: a full collection after `full` blobs or bytes, a young one after `young`. */
interface Cadence {
	readonly full: { readonly blobs: number; readonly bytes: number };
	readonly young?: { readonly blobs: number; readonly bytes: number };
}

/**
 * Blobs opened or sealed leave deciphers, HMACs and buffers behind whose bytes live outside
 * this thread's small heap, which grows too little for V8 to collect them on its own: left
 * alone they pile up to tens of MiB per worker. A young collection (well under a millisecond)
 * frees what died young; a full one (about a millisecond on this heap, plus marking on
 * other threads) also what lived past one.
 */
class Collector {
	#full = { blobs: 0, bytes: 0 };
	#young = { blobs: 0, bytes: 0 };

	constructor(private readonly cadence: Cadence) {}

	after(blobs: number, bytes: number): void {
		const { full, young } = this.cadence;
		this.#full = { blobs: this.#full.blobs + blobs, bytes: this.#full.bytes + bytes };
		this.#young = { blobs: this.#young.blobs + blobs, bytes: this.#young.bytes + bytes };
		if (this.#full.blobs >= full.blobs || this.#full.bytes >= full.bytes) {
			this.#full = { blobs: 0, bytes: 0 };
			this.#young = { blobs: 0, bytes: 0 };
			collectGarbage();
		} else if (young && (this.#young.blobs >= young.blobs || this.#young.bytes >= young.bytes)) {
			this.#young = { blobs: 0, bytes: 0 };
			collectGarbage("minor");
		}
	}
}

const MiB = 1024 * 1024;

/**
 * A restore's plaintexts are written to the files on this thread and die young: a young
 * collection every 1,024 blobs or 4 MiB, a full one every 8,192 or 32 MiB. Against a full one
 * as often as the young ones, on the benchmark's sets at scale 0.25: user CPU 1.83–1.87 →
 * 1.43–1.68 s (mixed) and 4.21–4.22 → 3.26–3.27 s (50,000 small files), peaks 157–158 →
 * 158–159 MiB.
 */
const afterRestoring = new Collector({ full: { blobs: 8192, bytes: 32 * MiB }, young: { blobs: 1024, bytes: 4 * MiB } });

/**
 * Sealing leaves compressed and enciphered copies of every blob behind, and references to
 * buffers the main thread has let go: a young collection every 2 MiB sealed, a full one (about
 * the cost of sealing a few MiB) every few packs' worth.
 */
const afterSealing = new Collector({
	full: { blobs: Number.POSITIVE_INFINITY, bytes: 32 * MiB },
	young: { blobs: Number.POSITIVE_INFINITY, bytes: 2 * MiB },
});

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
		} else if (request.op === "readLocal") {
			parentPort?.postMessage({ seq: request.seq, result: readLocalFiles(request.data, request.reads) });
		} else if (request.op === "digestFile") {
			parentPort?.postMessage({ seq: request.seq, result: digestFile(request.path, request.size, request.md5) });
		} else if (request.op === "digest") {
			parentPort?.postMessage({ seq: request.seq, result: work.digest(request.data) });
		} else if (request.op === "seal") {
			const sealed = work.seal(request.data, request.regions, request.compress, request.kind).map(movable);
			parentPort?.postMessage(
				{ seq: request.seq, result: sealed },
				sealed.map((s) => s.buffer as ArrayBuffer),
			);
		} else if (request.op === "sealInto") {
			const lengths = work.sealInto(request.data, request.regions, request.compress, request.out, request.at);
			parentPort?.postMessage({ seq: request.seq, result: lengths });
			afterSealing.after(
				lengths.length,
				lengths.reduce((sum, length) => sum + length, 0),
			);
		} else if (request.op === "hashSealInto") {
			const result = work.hashSealInto(request.data, request.regions, request.compress, request.out, request.at);
			parentPort?.postMessage({ seq: request.seq, result });
			afterSealing.after(
				result.lengths.length,
				result.lengths.reduce((sum, length) => sum + length, 0),
			);
		} else if (request.op === "restoreRange") {
			const { result, transfer } = restoreRange(work, request);
			parentPort?.postMessage({ seq: request.seq, result }, transfer);
			// The range read and the plaintexts opened from it are both left behind: text opens to several times its stored size.
			afterRestoring.after(request.ids.length, request.data.byteLength + sum(request.rawLengths));
		} else if (request.op === "holdsContent") {
			parentPort?.postMessage({ seq: request.seq, result: holdsContent(work, request) });
			// Each blob's HMAC is left behind, as an opened blob's is.
			afterRestoring.after(request.ids.length, request.size);
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
