import { parentPort, workerData } from "node:worker_threads";
import { collectGarbage } from "../host/collector.js";
import { isHoldfastError } from "../host/errors.js";
import { decodeIndexObject, type IndexForm } from "./index-decode.js";

// A worker thread that opens index objects, so a cold index load parses them off the main thread and two at a time.

export interface IndexRequest {
	seq: number;
	sealed: Uint8Array;
	key: string;
	form: IndexForm;
}

export type IndexResponse =
	| { seq: number; result: ReturnType<typeof decodeIndexObject> }
	| { seq: number; error: { code?: string; message: string } };

const encryption = workerData as Uint8Array;

/**
 * An index object that takes the general parse leaves a string and an array per blob behind:
 * collecting after each one (tens of milliseconds) keeps the thread's heap at one object's
 * worth, where letting it grow would add hundreds of MiB to a command's peak. A scanned one
 * leaves a few buffers: collecting after each of those cost a third of a cold load's CPU.
 */
/** Scanned objects between collections: their buffers, left to V8, grew the process by 100 MiB that it never gave back. */
const COLLECT_EVERY = 4;
let sinceCollected = 0;

parentPort?.on("message", (request: IndexRequest) => {
	try {
		const result = decodeIndexObject(encryption, request.sealed, request.key, request.form);
		// The packed arrays (or the catalog value) move back rather than being copied.
		const transfer = (result.packed ?? []).flatMap((packed) => [packed.ids.buffer, packed.numbers.buffer]);
		if (result.stored) transfer.push(result.stored.buffer);
		parentPort?.postMessage({ seq: request.seq, result } satisfies IndexResponse, [...new Set(transfer)] as ArrayBuffer[]);
		if (result.parsed || ++sinceCollected >= COLLECT_EVERY) {
			sinceCollected = 0;
			collectGarbage();
		}
	} catch (error) {
		const code = isHoldfastError(error) ? error.code : undefined;
		parentPort?.postMessage({
			seq: request.seq,
			error: { ...(code ? { code } : {}), message: (error as Error).message },
		} satisfies IndexResponse);
	}
});
