import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import type { FolderListing, FolderReader } from "./folder-reader.js";
import {
	decodeListing,
	type ListerData,
	type ListingMessage,
	SHARED,
	SHARED_SLOTS,
	type WalkRequest,
} from "./lister-protocol.js";

/**
 * Lists folders on a thread of its own, ahead of the walk. With its metadata cached, a walk
 * spent a third of the main thread's time in `readdir`, `lstat` and collecting the stats they
 * made (21,000 entries: about 0.5 of 1.6 s), and the main thread is the one that also looks
 * up each file's state and builds the trees.
 *
 * The walk starts on its own thread; once it has listed LISTER_AFTER entries the worker
 * starts, and once that is up the walk hands it where it stands (`handOver`). From then on
 * the worker lists the folders the walk will enter, in its order, and the walk takes each
 * listing as it enters the folder (`take`). Should a listing be for another folder than the
 * one entered (the two disagreed), or the worker stop, the walk reads every folder itself
 * from there on: the lister only ever makes the walk faster, never different.
 *
 * A walk over cached metadata rarely gives the event loop a turn (its awaits settle at
 * once), so nothing here waits for one while it need not: the worker says it is up in shared
 * memory, and listings that have arrived are taken from the port directly.
 */
export class FolderLister {
	#worker: Worker | undefined;
	#port: MessagePort | undefined;
	readonly #shared = new Int32Array(new SharedArrayBuffer(SHARED_SLOTS * 4));
	/** Stopped, closed or out of step: every folder is read on the walk's thread from now on. */
	#down = false;
	/** The walk handed over and not yet ended, if any. */
	#walk = 0;
	#walks = 0;
	/** Listings delivered by the event loop before the walk asked for them. */
	readonly #arrived: ListingMessage[] = [];
	/** The walk waiting for the next listing. */
	#waiting: ((message: ListingMessage | undefined) => void) | undefined;
	/** Listings taken from the worker: what a test can tell the lister was used by. */
	taken = 0;

	constructor(
		private readonly direct: FolderReader,
		private readonly script = fileURLToPath(new URL("./list-worker.js", import.meta.url)),
	) {}

	/** Starts the worker, once; it takes a walk from when it is up (`ready`). */
	start(): void {
		if (this.#worker || this.#down || !existsSync(this.script)) return;
		const { port1, port2 } = new MessageChannel();
		const workerData: ListerData = { options: this.direct.options, shared: this.#shared, port: port2 };
		// A small young generation, as the core's workers have: listings are short-lived, and each
		// MiB of it is memory the command holds.
		const worker = new Worker(this.script, {
			workerData,
			transferList: [port2],
			resourceLimits: { maxYoungGenerationSizeMb: 3 },
		});
		worker.on("error", () => this.#stop());
		worker.on("exit", () => this.#stop());
		port1.on("message", (message: ListingMessage) => this.#arrive(message));
		// After the listeners (adding one refs them again): an idle lister never keeps a command alive.
		worker.unref();
		port1.unref();
		this.#worker = worker;
		this.#port = port1;
	}

	/** Settles once the worker is up, at once when it will not be, and after `patienceMs` at the most. */
	async up(patienceMs = 30_000): Promise<void> {
		if (!this.#worker) return;
		const until = Date.now() + patienceMs;
		while (!this.#down && Atomics.load(this.#shared, SHARED.up) === 0 && Date.now() < until) {
			await new Promise((resolve) => setTimeout(resolve, 5));
		}
	}

	/** Whether a walk can be handed over now: the worker is up and has none. */
	get ready(): boolean {
		return !this.#down && this.#walk === 0 && Atomics.load(this.#shared, SHARED.up) === 1;
	}

	/** Stopped (closed, out of step, or its worker gone): it will not start again. */
	get stopped(): boolean {
		return this.#down;
	}

	/** Whether the listings of the walk's folders come from the worker. */
	get streaming(): boolean {
		return this.#walk !== 0 && !this.#down;
	}

	/** Hands the worker the walk where it stands. */
	handOver(request: Omit<WalkRequest, "walk">): void {
		if (!this.ready) return;
		this.#walk = ++this.#walks;
		// Counted per walk: the worker starts its own count at zero with each.
		Atomics.store(this.#shared, SHARED.taken, 0);
		Atomics.store(this.#shared, SHARED.takenEntries, 0);
		Atomics.store(this.#shared, SHARED.walk, this.#walk);
		Atomics.notify(this.#shared, SHARED.taken);
		this.#port?.postMessage({ ...request, walk: this.#walk } satisfies WalkRequest);
	}

	/** The walk of a root has ended: what the worker still posts for it is dropped. */
	endWalk(): void {
		this.#walk = 0;
		this.#arrived.length = 0;
		// Were the worker still at it (it listed what the walk passed by), it stops where it is.
		Atomics.store(this.#shared, SHARED.walk, 0);
		Atomics.notify(this.#shared, SHARED.taken);
	}

	/**
	 * The listing of the folder the walk enters, at `rel`; undefined when the worker's next
	 * listing is of another folder (the lister then stops and the walk reads for itself).
	 * Rejects when the folder could not be listed.
	 */
	async take(rel: Buffer): Promise<FolderListing | undefined> {
		let message = this.#next();
		if (!message && this.streaming) {
			// Held while a listing is awaited: the lister keeps a command alive only then.
			this.#port?.ref();
			message = await new Promise<ListingMessage | undefined>((resolve) => {
				this.#waiting = resolve;
			});
			this.#port?.unref();
		}
		if (!message || message.end || !message.rel || !rel.equals(message.rel)) {
			this.#stop();
			return undefined;
		}
		this.taken++;
		Atomics.add(this.#shared, SHARED.taken, 1);
		Atomics.add(this.#shared, SHARED.takenEntries, message.ends?.length ?? 0);
		Atomics.notify(this.#shared, SHARED.taken);
		return decodeListing(message);
	}

	/** Stops the worker, when the walk has ended. */
	close(): void {
		this.#stop();
	}

	/** The next listing of the current walk that has arrived, if any. */
	#next(): ListingMessage | undefined {
		for (;;) {
			let message = this.#arrived.shift();
			if (!message && this.#port) message = receiveMessageOnPort(this.#port)?.message as ListingMessage | undefined;
			if (!message) return undefined;
			if (message.walk === this.#walk) return message;
		}
	}

	#arrive(message: ListingMessage): void {
		if (message.walk !== this.#walk) return;
		const waiting = this.#waiting;
		this.#waiting = undefined;
		if (waiting) waiting(message);
		else this.#arrived.push(message);
	}

	#stop(): void {
		if (this.#down) return;
		this.#down = true;
		// No walk from now on: the worker stops where it is.
		Atomics.store(this.#shared, SHARED.walk, 0);
		Atomics.notify(this.#shared, SHARED.taken);
		this.#arrived.length = 0;
		this.#waiting?.(undefined);
		this.#waiting = undefined;
		this.#port?.close();
		void this.#worker?.terminate();
	}
}
