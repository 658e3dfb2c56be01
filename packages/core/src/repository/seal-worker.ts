import { parentPort, workerData } from "node:worker_threads";
import { type BlobKeys, decodeBlob, encodeBlob } from "./blob-codec.js";

/** A worker thread of the blob pool: compresses, encrypts, decrypts and verifies blobs. */
export type PoolRequest =
	| { seq: number; op: "encode"; data: Uint8Array; compress: boolean }
	| { seq: number; op: "decode"; data: Uint8Array; id: string; what: string };

export type PoolResponse = { seq: number; data: Uint8Array } | { seq: number; error: { code?: string; message: string } };

const keys = workerData as BlobKeys;
parentPort?.on("message", (request: PoolRequest) => {
	try {
		const data =
			request.op === "encode"
				? encodeBlob(keys, request.data, request.compress)
				: decodeBlob(keys, request.data, request.id, request.what);
		// Whole ArrayBuffers of their own: moved back, not copied.
		const owned = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : new Uint8Array(data);
		parentPort?.postMessage({ seq: request.seq, data: owned } satisfies PoolResponse, [owned.buffer as ArrayBuffer]);
	} catch (error) {
		const e = error as { code?: string; message?: string };
		parentPort?.postMessage({
			seq: request.seq,
			error: { ...(e.code ? { code: e.code } : {}), message: e.message ?? String(error) },
		});
	}
});
