import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type LocalReads, type LocalReadsDone, readLocalFiles } from "../engine/backup/local-file-reads.js";
import { type ContentCheck, type ContentVerdict, holdsContent } from "../engine/restore-existing-content.js";
import { type RangeRestored, type RestoreRangeRequest, restoreRange } from "../engine/restore-range-work.js";
import { type ErrorCode, HoldfastError } from "../host/errors.js";
import { Semaphore } from "../host/semaphore.js";
import { WORKER_RESOURCE_LIMITS } from "../host/worker-limits.js";
import { BlobWork, type Cut, type HashSealed, type Regions, type WorkerKeys } from "./blob-work.js";
import type { BodyKind } from "./compression.js";
import { digestFile, type PackFileDigests } from "./pack-file.js";
import type { PoolRequest, PoolResponse } from "./seal-worker.js";

/** What a request without bytes stands for: nothing to copy or count. */
const NO_DATA = new Uint8Array(new SharedArrayBuffer(0));
/**
 * Files up to this size are compared with the snapshot's on the calling thread: five quick
 * calls and a hash of a few KiB cost less than a trip to a worker and back. Restoring 50,000
 * small files (scale 0.25) again into the folder that held them all took 10.9–11.2 s compared
 * on the workers and 8.0–9.0 s so, against 7.2 s to restore them into an empty folder.
 */
const CONTENT_HERE = 64 * 1024;

type Slot = { worker: Worker; inflight: number; inflightBytes: number };
type Pending = {
	resolve: (result: unknown) => void;
	reject: (error: Error) => void;
	slot: Slot;
	bytes: number;
	size: number;
};

/**
 * A worker costs tens of ms of CPU to start: another starts only when the least busy one
 * already holds this many requests, or a request queued behind another and this many bytes
 * in all. A small backup's few requests stay on one thread (a source's single 1 MiB read
 * among them); a large one queues megabytes at once and gets every core.
 */
const GROW_AT = { requests: 3, bytes: 1024 * 1024 };
type Request = PoolRequest extends infer R ? (R extends PoolRequest ? Omit<R, "seq"> : never) : never;

/**
 * The per-byte work of backup and restore on worker threads, one per core: cut points, blob
 * IDs, compression, encryption and their reverse. The main thread reads, decides and packs.
 * Data in a SharedArrayBuffer is seen by the workers as is; anything else is copied once and
 * moved. Where the compiled worker is absent (the sources run by the unit tests), the same
 * work runs inline.
 */
export class BlobPool {
	readonly #workers: Slot[] = [];
	readonly #pending = new Map<number, Pending>();
	readonly #inline: BlobWork;
	#seq = 0;
	#turn = 0;
	/** Bytes copied for the workers and not yet back (restore's blobs); senders wait above the budget. */
	readonly #copies: Semaphore;
	/** Workers start with the first piece of work: a command that seals and opens nothing starts none. */
	#started = false;
	/** Why the pool can take no more work (a worker stopped, or close): later requests fail at once instead of waiting on a dead thread. */
	#stopped: Error | undefined;

	constructor(
		private readonly keys: WorkerKeys,
		private readonly size = Math.max(1, availableParallelism()),
		readonly budgetBytes = 48 * 1024 * 1024,
		private readonly script = fileURLToPath(new URL("./seal-worker.js", import.meta.url)),
	) {
		this.#inline = new BlobWork(keys);
		this.#copies = new Semaphore(budgetBytes);
	}

	#start(): void {
		if (this.#started) return;
		this.#started = true;
		if (!existsSync(this.script)) return;
		this.#addWorker();
	}

	/** One more worker thread (each costs its start, tens of ms of CPU: the pool adds one only when the others are busy). */
	#addWorker(): Slot {
		const worker = new Worker(this.script, { workerData: this.keys, resourceLimits: WORKER_RESOURCE_LIMITS });
		const slot = { worker, inflight: 0, inflightBytes: 0 };
		worker.on("message", (response: PoolResponse) => this.#settle(response));
		worker.on("error", (error) => this.#failAll(error));
		// A worker gone without an error (terminated, out of memory) must not leave its requests waiting forever.
		worker.on("exit", (code) => {
			this.#stopped ??= new HoldfastError("ABORTED", `a sealing worker stopped (exit code ${code})`);
			this.#failAll(this.#stopped);
		});
		// After the listeners (adding one refs the worker again): an idle pool never keeps a command alive.
		worker.unref();
		this.#workers.push(slot);
		return slot;
	}

	/** The worker threads started so far (none where the work runs inline). */
	get running(): number {
		return this.#workers.length;
	}

	/** IDs of the blobs at `regions` of `data`, one per region. */
	hash(data: Uint8Array, regions: Regions): Promise<string[]> {
		return this.#run({ op: "hash", data, regions }, () => this.#inline.hash(data, regions)) as Promise<string[]>;
	}

	/**
	 * Small files read from their paths into `data` (shared memory, a batch's buffer) at their
	 * regions, on a worker: the main thread makes no file call for them.
	 */
	readLocal(data: Uint8Array, reads: LocalReads): Promise<LocalReadsDone> {
		if (!(data.buffer instanceof SharedArrayBuffer))
			return Promise.reject(new TypeError("blob pool: readLocal needs shared memory"));
		return this.#run({ op: "readLocal", data, reads }, () => readLocalFiles(data, reads)) as Promise<LocalReadsDone>;
	}

	/** Chunks cut from the start of `data` (all of it when `final`) with their IDs. */
	chunk(data: Uint8Array, final: boolean): Promise<Cut> {
		return this.#run({ op: "chunk", data, final }, () => this.#inline.chunk(data, final)) as Promise<Cut>;
	}

	/** Each region compressed as `kind` (a tree stays in a codec every reader has) and sealed, as it goes into a pack. */
	seal(data: Uint8Array, regions: Regions, compress: boolean, kind: BodyKind): Promise<Uint8Array[]> {
		return this.#run({ op: "seal", data, regions, compress, kind }, () =>
			this.#inline.seal(data, regions, compress, kind),
		) as Promise<Uint8Array[]>;
	}

	/**
	 * Each region compressed and sealed into `out` (shared memory, a pack's buffer) from `at`,
	 * back to back; resolves to their lengths. `out` needs BLOB_OVERHEAD bytes beyond each region's length.
	 */
	sealInto(data: Uint8Array, regions: Regions, compress: boolean, out: Uint8Array, at: number): Promise<Uint32Array> {
		// A copy would be sealed into and dropped: the pack would keep zeros.
		if (!(out.buffer instanceof SharedArrayBuffer))
			return Promise.reject(new TypeError("blob pool: sealInto needs shared memory"));
		return this.#run({ op: "sealInto", data, regions, compress, out, at }, () =>
			this.#inline.sealInto(data, regions, compress, out, at),
		) as Promise<Uint32Array>;
	}

	/** The IDs of the regions and each sealed into `out` (shared memory) from `at`, in one trip; as `sealInto`. */
	hashSealInto(data: Uint8Array, regions: Regions, compress: boolean, out: Uint8Array, at: number): Promise<HashSealed> {
		if (!(out.buffer instanceof SharedArrayBuffer))
			return Promise.reject(new TypeError("blob pool: hashSealInto needs shared memory"));
		return this.#run({ op: "hashSealInto", data, regions, compress, out, at }, () =>
			this.#inline.hashSealInto(data, regions, compress, out, at),
		) as Promise<HashSealed>;
	}

	/** SHA-256 (hex) of data in shared memory, hashed where it lies. */
	digest(data: Uint8Array): Promise<string> {
		return this.#run({ op: "digest", data }, () => this.#inline.digest(data)) as Promise<string>;
	}

	/** SHA-256 (and with `md5`, MD5) of the file at `path` (`size` bytes, a pack assembled on disk), read and hashed on a worker. */
	digestFile(path: string, size: number, md5 = false): Promise<PackFileDigests> {
		return this.#run({ op: "digestFile", path, size, md5 }, () => digestFile(path, size, md5)) as Promise<PackFileDigests>;
	}

	decode(sealed: Uint8Array, id: string, what: string): Promise<Uint8Array> {
		return this.#run({ op: "decode", data: sealed, id, what }, () =>
			this.#inline.decode(sealed, id, what),
		) as Promise<Uint8Array>;
	}

	/** Restore: a read range opened and verified, and the files wholly inside it written, on one thread. `data` is given away. */
	restoreRange(request: RestoreRangeRequest): Promise<RangeRestored> {
		return this.#run({ op: "restoreRange", ...request }, () => restoreRange(this.#inline, request).result, {
			give: true,
		}) as Promise<RangeRestored>;
	}

	/**
	 * Whether the file at `check.path` holds exactly the blobs `check` lists: read and hashed on
	 * a worker, or here when it is small enough that the trip would cost more.
	 */
	holdsContent(check: ContentCheck): Promise<ContentVerdict> {
		if (check.size <= CONTENT_HERE) return Promise.resolve(holdsContent(this.#inline, check));
		return this.#run({ op: "holdsContent", ...check }, () => holdsContent(this.#inline, check)) as Promise<ContentVerdict>;
	}

	async #run(request: Request, inline: () => unknown, options: { give?: boolean } = {}): Promise<unknown> {
		this.#start();
		if (this.#workers.length === 0) return inline();
		// A request without bytes (a file's digest) sends nothing to copy.
		const given = "data" in request ? request.data : NO_DATA;
		const shared = given.buffer instanceof SharedArrayBuffer;
		const whole = given.byteOffset === 0 && given.byteLength === given.buffer.byteLength;
		const bytes = shared ? 0 : given.byteLength;
		// Memory stays bounded however fast blobs arrive: the budget is what copies for the workers hold.
		if (bytes > 0) await this.#copies.acquire(bytes);
		if (this.#stopped) {
			if (bytes > 0) this.#copies.release(bytes);
			throw this.#stopped;
		}
		const data = shared || (options.give && whole) ? given : new Uint8Array(given);
		const slot = this.#pick();
		const seq = ++this.#seq;
		// Referenced while it has work: a pending blob must keep the process alive.
		if (slot.inflight++ === 0) slot.worker.ref();
		// A comparison sends a path, and reads and hashes the whole file there.
		const size = request.op === "holdsContent" ? request.size : given.byteLength;
		slot.inflightBytes += size;
		return new Promise((resolve, reject) => {
			this.#pending.set(seq, { resolve, reject, slot, bytes, size });
			const message = "data" in request ? { ...request, data, seq } : { ...request, seq };
			slot.worker.postMessage(message, shared ? [] : [data.buffer as ArrayBuffer]);
		});
	}

	/**
	 * The least busy worker, ties taken in turn: a run of single requests still spreads over every core.
	 * Another worker starts only when the least busy one holds GROW_AT's work: a small command seals on one.
	 */
	#pick(): Slot {
		const n = this.#workers.length;
		let best = this.#workers[this.#turn % n] as Slot;
		for (let i = 1; i < n; i++) {
			const slot = this.#workers[(this.#turn + i) % n] as Slot;
			if (slot.inflight < best.inflight) best = slot;
		}
		this.#turn++;
		// Queued means behind the one running: a single request, however large, waits on nothing.
		const queued = best.inflight >= 2;
		const busy = best.inflight >= GROW_AT.requests || (queued && best.inflightBytes >= GROW_AT.bytes);
		if (busy && n < this.size) return this.#addWorker();
		return best;
	}

	#settle(response: PoolResponse): void {
		const pending = this.#pending.get(response.seq);
		if (!pending) return;
		this.#pending.delete(response.seq);
		pending.slot.inflightBytes -= pending.size;
		if (--pending.slot.inflight === 0) pending.slot.worker.unref();
		if (pending.bytes > 0) this.#copies.release(pending.bytes);
		if ("error" in response) {
			pending.reject(new HoldfastError((response.error.code as ErrorCode) ?? "CORRUPT", response.error.message));
		} else pending.resolve(response.result);
	}

	#failAll(error: Error): void {
		for (const [seq, pending] of this.#pending) {
			this.#pending.delete(seq);
			if (pending.bytes > 0) this.#copies.release(pending.bytes);
			pending.reject(error);
		}
	}

	async close(): Promise<void> {
		this.#started = true;
		this.#stopped ??= new HoldfastError("ABORTED", "the sealing workers were closed");
		const workers = this.#workers.splice(0);
		await Promise.all(workers.map(({ worker }) => worker.terminate()));
		this.#failAll(this.#stopped);
	}
}

/** A copy of `data` in shared memory: hashed and sealed by the workers without another copy. */
export function sharedCopy(data: Uint8Array): Buffer {
	const copy = Buffer.from(new SharedArrayBuffer(data.byteLength));
	copy.set(data);
	return copy;
}
