import type {
	ByteRange,
	Destination,
	FileUpload,
	ListedObject,
	ListOptions,
	ObjectLock,
	ObjectVersion,
	PreflightRequest,
} from "./destination.js";
import { DestinationWrapper } from "./destination-wrapper.js";
import type { DoctorRequest, KeyRole } from "./doctor.js";
import { classifyFault, RetryBudget } from "./faults.js";
import { putFromFile } from "./put-file.js";

/**
 * Transient faults retried for every store, as restic wraps every backend in its retry
 * backend: the store classifies its errors (`transient: true`, an HTTP status, a network
 * code; see `classifyFault`) and never retries; this layer retries what is transient with
 * backoff and full jitter until the set's budget is spent, then throws UNREACHABLE. Anything
 * else (absent, refused, damaged) passes through at once.
 *
 * Every call is safe to repeat:
 * - `get`, `head` and `inspectAccess` change nothing; a `get` is repeated whole, so a body cut
 *   off midway is read again from its first byte. `preflight` checks before it creates, so a
 *   repeat finds the bucket or folder an earlier attempt made.
 * - `put` (and `putFile`, which reads its file again) of a content-addressed key sends the same bytes: a write whose answer was lost
 *   may leave a second identical version, which verifies like the first and is deleted with
 *   the object (locks are extended on the version the answer named).
 * - `extendLock` asks for the same retain-until again, which is no shortening.
 * - `deleteVersion` of a version an earlier attempt deleted finds it gone: that is success.
 * - `deleteMarker` may add a second marker; the object is hidden either way, and markers
 *   hide nothing from a reader that lists versions.
 * - listings start again after the last key they had whole and skip what was already
 *   yielded, so a fault never shortens them.
 * - `doctor` runs its checks again from the start (a fresh canary).
 */
export class RetryingDestination extends DestinationWrapper {
	constructor(
		store: Destination,
		readonly budget: RetryBudget,
	) {
		super(store);
	}

	override preflight(request: PreflightRequest) {
		return this.budget.run(`preflight`, () => this.store.preflight(request));
	}

	override put(key: string, body: Uint8Array, lock?: ObjectLock): Promise<{ versionId: string }> {
		return this.budget.run(`put ${key}`, () => this.store.put(key, body, lock));
	}

	/** Each attempt reads the file again from its first byte (or the store does). */
	override putFile(upload: FileUpload): Promise<{ versionId: string }> {
		return this.budget.run(`put ${upload.key}`, () => putFromFile(this.store, upload));
	}

	override get(key: string, options?: { versionId?: string; range?: ByteRange }): Promise<Uint8Array> {
		return this.budget.run(`get ${key}`, () => this.store.get(key, options));
	}

	override head(key: string, versionId?: string): Promise<ObjectVersion | undefined> {
		return this.budget.run(`head ${key}`, () => this.store.head(key, versionId));
	}

	override list(prefix: string, options?: ListOptions): AsyncIterable<ListedObject> {
		return this.#listing(
			`list ${prefix}`,
			options,
			(from) => this.store.list(prefix, from),
			(object) => object.key,
		);
	}

	override listVersions(prefix: string, options?: ListOptions): AsyncIterable<ObjectVersion> {
		return this.#listing(
			`list versions of ${prefix}`,
			options,
			(from) => this.store.listVersions(prefix, from),
			(version) => `${version.key}\0${version.versionId}`,
		);
	}

	override extendLock(key: string, versionId: string, lock: ObjectLock): Promise<void> {
		return this.budget.run(`extend lock of ${key}`, () => this.store.extendLock(key, versionId, lock));
	}

	override deleteVersion(key: string, versionId: string, options?: { bypassGovernance?: boolean }): Promise<void> {
		let unanswered = false;
		return this.budget.run(`delete ${key}`, async () => {
			try {
				await this.store.deleteVersion(key, versionId, options);
			} catch (error) {
				const kind = classifyFault(error);
				// An attempt whose answer was lost may have deleted it: gone is what was asked.
				if (unanswered && kind === "not-found") return;
				if (kind === "transient") unanswered = true;
				throw error;
			}
		});
	}

	override deleteMarker(key: string): Promise<void> {
		return this.budget.run(`delete ${key}`, () => this.store.deleteMarker(key));
	}

	override get doctor() {
		const doctor = this.store.doctor?.bind(this.store);
		return doctor && ((request: DoctorRequest) => this.budget.run("doctor", () => doctor(request)));
	}

	override get inspectAccess() {
		const inspect = this.store.inspectAccess?.bind(this.store);
		return inspect && (() => this.budget.run("access probe", inspect));
	}

	/** The same retry over the store opened with `role`'s key, sharing this one's budget: one store, one outage. */
	override withKey(role: KeyRole): Destination | undefined {
		const keyed = this.store.withKey?.(role);
		return keyed && new RetryingDestination(keyed, this.budget);
	}

	/**
	 * A listing, started again after a transient fault after the last key it had whole, with
	 * what was already yielded skipped: the caller sees each entry once and never a listing cut
	 * short (restic's retry `List`), and a long listing is not read again from its first page.
	 */
	async *#listing<T extends { readonly key: string }>(
		what: string,
		options: ListOptions | undefined,
		open: (options: ListOptions | undefined) => AsyncIterable<T>,
		identity: (entry: T) => string,
	): AsyncIterable<T> {
		const seen = new Set<string>();
		// Keys come in order: once another key follows, every entry of the one before was yielded.
		let current: string | undefined;
		let whole = options?.startAfter;
		for (let attempt = 0; ; attempt++) {
			try {
				for await (const entry of open(whole === undefined ? options : { ...options, startAfter: whole })) {
					const id = identity(entry);
					if (seen.has(id)) continue;
					seen.add(id);
					if (current !== undefined && entry.key !== current) whole = current;
					current = entry.key;
					this.budget.succeeded();
					attempt = 0;
					yield entry;
				}
				this.budget.succeeded();
				return;
			} catch (error) {
				await this.budget.failed(what, error, attempt);
			}
		}
	}
}

/** Where the retry layer takes its budget and its cap on attempts. */
export interface RetryOptions {
	/** The set's `retryBudget` (or `HOLDFAST_RETRY_BUDGET`); default two minutes. */
	readonly retryBudgetMs?: number;
}

/** `store` with its transient faults retried, once: a store already wrapped is returned as it is. */
export function retryTransientFaults(store: Destination, options: RetryOptions = {}): Destination {
	if (store instanceof RetryingDestination) return store;
	const budget = new RetryBudget(store.description, {
		...(options.retryBudgetMs !== undefined ? { budgetMs: options.retryBudgetMs } : {}),
		...(store.maxAttempts !== undefined ? { maxAttempts: store.maxAttempts } : {}),
	});
	return new RetryingDestination(store, budget);
}
