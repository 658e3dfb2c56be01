/**
 * Everything that reads time reads it here, so what-if planning (`--now`) and the
 * time-travel tests move one value and the whole engine follows.
 */
export interface Clock {
	now(): Date;
}

export class SystemClock implements Clock {
	now(): Date {
		return new Date();
	}
}

/** A clock that stands still until moved: the tests' and `--now`'s clock. */
export class ManualClock implements Clock {
	#ms: number;

	constructor(start: Date | string | number) {
		this.#ms = new Date(start).getTime();
		if (Number.isNaN(this.#ms)) throw new RangeError(`not a time: ${String(start)}`);
	}

	now(): Date {
		return new Date(this.#ms);
	}

	set(to: Date | string | number): void {
		this.#ms = new Date(to).getTime();
	}

	advance(ms: number): void {
		this.#ms += ms;
	}
}

/** Real time shifted by a fixed offset, so `--now` still ticks during a long run. */
export class OffsetClock implements Clock {
	readonly #offsetMs: number;

	constructor(start: Date) {
		this.#offsetMs = start.getTime() - Date.now();
	}

	now(): Date {
		return new Date(Date.now() + this.#offsetMs);
	}
}

export const DAY_MS = 86_400_000;

export function addDays(date: Date, days: number): Date {
	return new Date(date.getTime() + days * DAY_MS);
}
