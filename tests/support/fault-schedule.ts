import {
	type Fault,
	type FaultPlan,
	type ProxiedRequest,
	REQUEST_CLASSES,
	type RequestClass,
} from "../../packages/plugin-b2/src/test-support/b2-strict-proxy.js";
import { prng } from "./world.js";

type FaultKind = "503" | "500" | "429" | "reset-request" | "reset-response" | "slow";
const KINDS: readonly FaultKind[] = ["503", "500", "429", "reset-request", "reset-response", "slow"];

/** How one class of requests is faulted: how often, and with which faults. */
export interface ClassFaults {
	readonly rate: number;
	readonly kinds: readonly FaultKind[];
}

/** Every request refused (503 or a reset) from the `atRequest`-th request on, for `forMs`. */
export interface Outage {
	readonly atRequest: number;
	readonly forMs: number;
}

export interface ScheduleOptions {
	/** The classes faulted (default: every one the issue names). */
	readonly classes?: readonly RequestClass[];
	/** The highest share of a class's requests faulted (default 0.3). */
	readonly maxRate?: number;
	/** The longest slow answer, in ms (default 1500). */
	readonly maxSlowMs?: number;
	readonly outages?: readonly Outage[];
}

/**
 * A fault schedule drawn from a seed: per request class a rate and a set of faults, and
 * outage windows opened at a request count. Each class draws from a stream of its own, so
 * the n-th GET meets the same fault whatever the PUTs around it did: a failing seed replays.
 */
export class FaultSchedule implements FaultPlan {
	readonly classes: ReadonlyMap<RequestClass, ClassFaults>;
	readonly outages: readonly Outage[];
	readonly #streams = new Map<RequestClass, () => number>();
	readonly #maxSlowMs: number;
	#outageUntil = 0;
	#outagesOpened = 0;
	readonly #outageRandom: () => number;

	constructor(
		readonly seed: number,
		options: ScheduleOptions = {},
	) {
		const random = prng(seed);
		const maxRate = options.maxRate ?? 0.3;
		this.#maxSlowMs = options.maxSlowMs ?? 1500;
		const classes = new Map<RequestClass, ClassFaults>();
		for (const [i, name] of (options.classes ?? REQUEST_CLASSES).entries()) {
			// At least two kinds of fault per class, so every class meets a status and a broken connection over a few seeds.
			const kinds = KINDS.filter(() => random() < 0.5);
			while (kinds.length < 2) {
				const pick = KINDS[Math.floor(random() * KINDS.length)] as FaultKind;
				if (!kinds.includes(pick)) kinds.push(pick);
			}
			classes.set(name, { rate: Math.round((0.1 + random() * (maxRate - 0.1)) * 100) / 100, kinds });
			this.#streams.set(name, prng(seed * 31 + i + 1));
		}
		this.classes = classes;
		this.outages = options.outages ?? [];
		this.#outageRandom = prng(seed * 17 + 3);
	}

	decide(request: ProxiedRequest): Fault | undefined {
		const opening = this.outages[this.#outagesOpened];
		if (opening && request.n >= opening.atRequest) {
			this.#outagesOpened++;
			this.#outageUntil = Date.now() + opening.forMs;
		}
		if (Date.now() < this.#outageUntil)
			return this.#outageRandom() < 0.5 ? { kind: "status", status: 503 } : { kind: "reset-request" };
		const faults = this.classes.get(request.class);
		const random = this.#streams.get(request.class);
		if (!faults || !random) return undefined;
		if (random() >= faults.rate) return undefined;
		const kind = faults.kinds[Math.floor(random() * faults.kinds.length)] as FaultKind;
		switch (kind) {
			case "503":
			case "500":
			case "429":
				return { kind: "status", status: Number(kind) as 503 | 500 | 429 };
			case "slow":
				return { kind: "slow", ms: Math.round(100 + random() * (this.#maxSlowMs - 100)) };
			default:
				return { kind };
		}
	}

	/** The schedule in one line, to print with a failure. */
	describe(): string {
		const classes = [...this.classes].map(([name, f]) => `${name} ${Math.round(f.rate * 100)}% ${f.kinds.join("/")}`);
		const outages = this.outages.map((o) => `outage ${o.forMs} ms at request ${o.atRequest}`);
		return `seed ${this.seed}: ${[...classes, ...outages].join("; ")}`;
	}
}
