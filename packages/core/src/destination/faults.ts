import { describeError, HoldfastError } from "../host/errors.js";
import { parseDuration } from "../host/units.js";

/**
 * What a failed destination call means. Only `transient` is worth trying again; `unreachable`
 * is a transient fault whose retry budget is already spent (by the retry layer).
 */
export type FaultKind = "transient" | "unreachable" | "not-found" | "forbidden" | "other";

/** A store answering "try later" (5xx, 429, SlowDown) or a network that dropped or stalled the call. */
const TRANSIENT_CODES = new Set([
	"ECONNRESET",
	"ECONNREFUSED",
	"ECONNABORTED",
	"ETIMEDOUT",
	"EPIPE",
	"EAI_AGAIN",
	"ENETUNREACH",
	"ENETDOWN",
	"EHOSTUNREACH",
	"UND_ERR_SOCKET",
	"UND_ERR_CONNECT_TIMEOUT",
]);
const TRANSIENT_NAMES = new Set([
	"TimeoutError",
	"RequestTimeout",
	"RequestTimeoutException",
	"SlowDown",
	"ThrottlingException",
	"TooManyRequestsException",
	"ServiceUnavailable",
	"InternalError",
	"NetworkingError",
]);

interface ErrorShape {
	code?: unknown;
	name?: unknown;
	transient?: unknown;
	cause?: unknown;
	$metadata?: { httpStatusCode?: number };
	$retryable?: unknown;
}

export function classifyFault(error: unknown): FaultKind {
	// The cause chain: destinations wrap the store's error in one of their own.
	for (let e = error as ErrorShape | undefined, depth = 0; e && typeof e === "object" && depth < 5; depth++) {
		if (e.code === "UNREACHABLE") return "unreachable";
		if (e.transient === true || e.$retryable) return "transient";
		if (e.code === "NOT_FOUND") return "not-found";
		if (e.code === "LOCKED") return "forbidden";
		const status = e.$metadata?.httpStatusCode;
		if (status !== undefined) {
			if (status === 429 || status >= 500) return "transient";
			if (status === 404) return "not-found";
			if (status === 401 || status === 403) return "forbidden";
		}
		if (typeof e.code === "string" && TRANSIENT_CODES.has(e.code)) return "transient";
		if (typeof e.name === "string" && TRANSIENT_NAMES.has(e.name)) return "transient";
		e = e.cause as ErrorShape | undefined;
	}
	return "other";
}

/** Two minutes: long enough to ride out a store's brief outage or throttling, short enough for a scheduler. */
export const DEFAULT_RETRY_BUDGET_MS = 120_000;

/** `retryBudget` of a set, else `HOLDFAST_RETRY_BUDGET` (tests keep it small), else two minutes. */
export function retryBudgetMs(configured: string | undefined, env: NodeJS.ProcessEnv, where: string): number {
	if (configured !== undefined) return parseDuration(configured, where);
	const fromEnv = env.HOLDFAST_RETRY_BUDGET;
	if (fromEnv) return parseDuration(fromEnv, "HOLDFAST_RETRY_BUDGET");
	return DEFAULT_RETRY_BUDGET_MS;
}

export interface RetryBudgetOptions {
	readonly budgetMs?: number;
	readonly baseDelayMs?: number;
	readonly maxDelayMs?: number;
	/** A cap on attempts per call, on top of the time budget. */
	readonly maxAttempts?: number;
	/** Milliseconds of elapsed time (tests replace it). */
	readonly now?: () => number;
}

/**
 * Retries transient faults with exponential backoff and full jitter until the budget is spent.
 * The budget measures one outage, shared by every call through this instance: once it is
 * spent, calls get one attempt each (no waiting) until one succeeds, so a dead store fails a
 * run in minutes rather than minutes per object.
 */
export class RetryBudget {
	readonly budgetMs: number;
	readonly #baseDelayMs: number;
	readonly #maxDelayMs: number;
	readonly #maxAttempts: number;
	readonly #now: () => number;
	/** When the current run of transient failures began; undefined while calls succeed. */
	#failingSince: number | undefined;
	#lastFailure = 0;

	constructor(
		readonly destination: string,
		options: RetryBudgetOptions = {},
	) {
		this.budgetMs = options.budgetMs ?? DEFAULT_RETRY_BUDGET_MS;
		this.#baseDelayMs = options.baseDelayMs ?? 250;
		this.#maxDelayMs = options.maxDelayMs ?? 15_000;
		this.#maxAttempts = options.maxAttempts ?? Number.POSITIVE_INFINITY;
		this.#now = options.now ?? Date.now;
	}

	/** Runs `operation` (described as e.g. "get snapshots/ab…") until it succeeds, fails for good, or the budget is spent. */
	async run<T>(what: string, operation: () => Promise<T>): Promise<T> {
		for (let attempt = 0; ; attempt++) {
			try {
				const result = await operation();
				this.succeeded();
				return result;
			} catch (error) {
				await this.failed(what, error, attempt);
			}
		}
	}

	/** The store answered: the current outage, if any, is over. */
	succeeded(): void {
		this.#failingSince = undefined;
	}

	/**
	 * After the `attempt`-th failure of one call: rethrows a fault not worth retrying, throws
	 * UNREACHABLE once the budget is spent, else waits the backoff before the next attempt.
	 */
	async failed(what: string, error: unknown, attempt: number): Promise<void> {
		if (classifyFault(error) !== "transient") throw error;
		const now = this.#now();
		// Nothing asked for a budget's time since the last failure (a daemon's next run): a new outage.
		if (now - this.#lastFailure > this.budgetMs) this.#failingSince = undefined;
		this.#lastFailure = now;
		this.#failingSince ??= now;
		const left = this.budgetMs - (now - this.#failingSince);
		if (left <= 0 || attempt + 1 >= this.#maxAttempts) throw this.unreachable(what, error, now - this.#failingSince);
		const ceiling = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** Math.min(attempt, 20));
		await sleep(Math.min(left, Math.max(10, Math.random() * ceiling)));
	}

	unreachable(what: string, error: unknown, spentMs: number): HoldfastError {
		return new HoldfastError(
			"UNREACHABLE",
			`${this.destination} is unreachable: ${what} kept failing for ${formatSeconds(spentMs)} (${describeFault(error)})`,
			{ cause: error },
		);
	}
}

/** The store's answer in one line: its code and HTTP status when it gave them. */
function describeFault(outer: unknown): string {
	const error = transientCause(outer);
	const { name, code, $metadata } = (error ?? {}) as ErrorShape;
	const status = $metadata?.httpStatusCode;
	const label = typeof code === "string" ? code : typeof name === "string" && name !== "Error" ? name : undefined;
	const prefix = [label, status ? `HTTP ${status}` : undefined].filter(Boolean).join(", ");
	return prefix ? `${prefix}: ${describeError(error)}` : describeError(error);
}

/** The error in the cause chain that made the fault transient (the store's own answer), not the store's wrapper of it. */
function transientCause(error: unknown): unknown {
	for (let e = error as ErrorShape | undefined, depth = 0; e && typeof e === "object" && depth < 5; depth++) {
		const status = e.$metadata?.httpStatusCode;
		if (e.transient === true || e.$retryable || (status !== undefined && (status === 429 || status >= 500))) return e;
		if (
			(typeof e.code === "string" && TRANSIENT_CODES.has(e.code)) ||
			(typeof e.name === "string" && TRANSIENT_NAMES.has(e.name))
		)
			return e;
		e = e.cause as ErrorShape | undefined;
	}
	return error;
}

function formatSeconds(ms: number): string {
	return ms >= 120_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 100) / 10} s`;
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}
