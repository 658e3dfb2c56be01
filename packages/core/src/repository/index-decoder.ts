import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type ErrorCode, HoldfastError } from "../host/errors.js";
import { WORKER_RESOURCE_LIMITS } from "../host/worker-limits.js";
import { type DecodedIndex, decodeIndexObject, type IndexForm } from "./index-decode.js";
import type { IndexRequest, IndexResponse } from "./index-worker.js";

// Where index objects are opened during a load: on a worker thread started for the load and stopped after it.

/**
 * Threads for one cold index load. One: it opens, parses and encodes while the main thread
 * seals and writes the catalog; a second thread measured 130 MiB more peak memory at ten
 * million blobs for a few seconds less.
 */
const MAX_THREADS = 1;

/**
 * Sealed bytes a load opens on the main thread before it starts a thread for the rest. A thread
 * is a V8 isolate of its own, ~100 ms of CPU and tens of MiB to start; a repository's first
 * index objects (what `init` writes, a few backups' worth) open inline in less than that.
 */
export const INLINE_INDEX_BYTES = 256 * 1024;

interface Thread {
	worker: Worker;
	inflight: number;
}

export class IndexDecoder {
	readonly #workers: Thread[] = [];
	readonly #waiting = new Map<number, { resolve: (value: DecodedIndex) => void; reject: (error: unknown) => void }>();
	#seq = 0;
	#started = false;
	/** Sealed bytes opened inline since the last `close`. */
	#inlineBytes = 0;

	constructor(
		private readonly encryption: Uint8Array,
		/** The worker script: built beside this module; none (sources run directly) opens objects inline. */
		private readonly script = fileURLToPath(new URL("./index-worker.js", import.meta.url)),
		/** Sealed bytes opened inline before a thread starts (0: every object on a thread). */
		private readonly inlineBudget = INLINE_INDEX_BYTES,
	) {}

	/** Threads running now (0 before the first object, after `close`, or when objects are opened inline). */
	get threads(): number {
		return this.#workers.length;
	}

	/**
	 * Opens one sealed index object whose name was verified: inline while the load's objects
	 * fit the inline budget (or no worker script is built: tests on sources), else on the thread.
	 */
	decode(sealed: Uint8Array, key: string, form: IndexForm): Promise<DecodedIndex> {
		if (!this.#started && this.#inlineBytes + sealed.length <= this.inlineBudget) {
			this.#inlineBytes += sealed.length;
			return this.#decodeInline(sealed, key, form);
		}
		this.#start();
		const slot = this.#workers.reduce<Thread | undefined>(
			(best, w) => (!best || w.inflight < best.inflight ? w : best),
			undefined,
		);
		if (!slot) return this.#decodeInline(sealed, key, form);
		const seq = ++this.#seq;
		// A thread with work keeps the command alive until the answer comes.
		if (slot.inflight++ === 0) slot.worker.ref();
		const done = () => {
			if (--slot.inflight === 0) slot.worker.unref();
		};
		// A copy of its own, moved to the thread: a view's whole underlying buffer would be cloned.
		const own = new Uint8Array(sealed);
		return new Promise<DecodedIndex>((resolve, reject) => {
			this.#waiting.set(seq, {
				resolve: (value) => {
					done();
					resolve(value);
				},
				reject: (error) => {
					done();
					reject(error);
				},
			});
			slot.worker.postMessage({ seq, sealed: own, key, form } satisfies IndexRequest, [own.buffer]);
		});
	}

	/** Stops the threads; a later load starts new ones, after its own inline budget. */
	async close(): Promise<void> {
		const workers = this.#workers.splice(0);
		this.#started = false;
		this.#inlineBytes = 0;
		await Promise.all(workers.map(({ worker }) => worker.terminate()));
	}

	/** The same steps the thread takes, on this thread, answered as the thread would (a settled promise). */
	#decodeInline(sealed: Uint8Array, key: string, form: IndexForm): Promise<DecodedIndex> {
		return Promise.resolve().then(() => decodeIndexObject(this.encryption, sealed, key, form));
	}

	#start(): void {
		if (this.#started) return;
		this.#started = true;
		const script = this.script;
		if (!existsSync(script)) return;
		const threads = Math.min(MAX_THREADS, availableParallelism());
		for (let i = 0; i < threads; i++) {
			const worker = new Worker(script, { workerData: this.encryption, resourceLimits: WORKER_RESOURCE_LIMITS });
			worker.on("message", (response: IndexResponse) => this.#settle(response));
			worker.on("error", (error) => this.#failAll(error));
			// After the listeners: idle threads never keep a command alive.
			worker.unref();
			this.#workers.push({ worker, inflight: 0 });
		}
	}

	#settle(response: IndexResponse): void {
		const waiting = this.#waiting.get(response.seq);
		if (!waiting) return;
		this.#waiting.delete(response.seq);
		if ("error" in response) {
			const { code, message } = response.error;
			waiting.reject(code ? new HoldfastError(code as ErrorCode, message) : new Error(message));
		} else {
			waiting.resolve(response.result);
		}
	}

	/** A thread that failed: what waits on any thread fails, and later objects are opened inline. */
	#failAll(error: unknown): void {
		for (const { worker } of this.#workers.splice(0)) void worker.terminate();
		for (const waiting of this.#waiting.values()) waiting.reject(error);
		this.#waiting.clear();
	}
}
