import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type ErrorCode, HoldfastError } from "../host/errors.js";
import { type BlobKeys, decodeBlob, encodeBlob } from "./blob-codec.js";
import type { PoolRequest, PoolResponse } from "./seal-worker.js";

type Pending = { resolve: (data: Uint8Array) => void; reject: (error: Error) => void };

/**
 * Compression and encryption of blobs on worker threads, one per core: the main thread is
 * left to read, chunk and pack. Where the compiled worker is absent (the sources run by the
 * unit tests), the same codec runs inline.
 */
export class BlobPool {
	readonly #workers: { worker: Worker; inflight: number }[] = [];
	readonly #pending = new Map<number, Pending & { slot: { worker: Worker; inflight: number }; bytes: number }>();
	#seq = 0;
	/** Bytes handed to the workers and not yet back; senders wait above the budget. */
	#inflightBytes = 0;
	readonly #waiting: (() => void)[] = [];

	constructor(
		private readonly keys: BlobKeys,
		size = Math.max(1, Math.min(4, availableParallelism())),
		readonly budgetBytes = 48 * 1024 * 1024,
	) {
		const script = fileURLToPath(new URL("./seal-worker.js", import.meta.url));
		if (!existsSync(script)) return;
		for (let i = 0; i < size; i++) {
			const worker = new Worker(script, { workerData: keys });
			const slot = { worker, inflight: 0 };
			worker.on("message", (response: PoolResponse) => this.#settle(response));
			worker.on("error", (error) => this.#failAll(error));
			// After the listeners (adding one refs the worker again): an idle pool never keeps a command alive.
			worker.unref();
			this.#workers.push(slot);
		}
	}

	get threads(): number {
		return this.#workers.length;
	}

	encode(data: Uint8Array, compress: boolean): Promise<Uint8Array> {
		if (this.#workers.length === 0) return Promise.resolve(encodeBlob(this.keys, data, compress));
		return this.#send({ seq: 0, op: "encode", data: owned(data), compress });
	}

	decode(sealed: Uint8Array, id: string, what: string): Promise<Uint8Array> {
		if (this.#workers.length === 0) {
			try {
				return Promise.resolve(decodeBlob(this.keys, sealed, id, what));
			} catch (error) {
				return Promise.reject(error);
			}
		}
		return this.#send({ seq: 0, op: "decode", data: owned(sealed), id, what });
	}

	async #send(request: PoolRequest): Promise<Uint8Array> {
		// Memory stays bounded however fast files are read: the budget is what the workers hold.
		while (this.#inflightBytes > 0 && this.#inflightBytes + request.data.byteLength > this.budgetBytes) {
			await new Promise<void>((resolve) => this.#waiting.push(resolve));
		}
		const bytes = request.data.byteLength;
		this.#inflightBytes += bytes;
		const slot = this.#workers.reduce((a, b) => (b.inflight < a.inflight ? b : a));
		const seq = ++this.#seq;
		// Referenced while it has work: a pending blob must keep the process alive.
		if (slot.inflight++ === 0) slot.worker.ref();
		return new Promise((resolve, reject) => {
			this.#pending.set(seq, { resolve, reject, slot, bytes });
			slot.worker.postMessage({ ...request, seq }, [request.data.buffer as ArrayBuffer]);
		});
	}

	#settle(response: PoolResponse): void {
		const pending = this.#pending.get(response.seq);
		if (!pending) return;
		this.#pending.delete(response.seq);
		if (--pending.slot.inflight === 0) pending.slot.worker.unref();
		this.#inflightBytes -= pending.bytes;
		for (const wake of this.#waiting.splice(0)) wake();
		if ("error" in response) {
			pending.reject(new HoldfastError((response.error.code as ErrorCode) ?? "CORRUPT", response.error.message));
		} else pending.resolve(response.data);
	}

	#failAll(error: Error): void {
		for (const [seq, pending] of this.#pending) {
			this.#pending.delete(seq);
			pending.reject(error);
		}
	}

	async close(): Promise<void> {
		await Promise.all(this.#workers.map(({ worker }) => worker.terminate()));
		this.#workers.length = 0;
	}
}

/** A copy in an ArrayBuffer of its own, which can be moved to a worker without copying the rest. */
function owned(data: Uint8Array): Uint8Array {
	return new Uint8Array(data);
}
