/**
 * The cap on packs assembled or uploading at once: a new pack waits for an uploaded one's
 * place instead of piling up full packs (and their temporary files) while uploads lag.
 */
export class PackSlots {
	/** Packs open or uploading. */
	#out = 0;
	/** Packs closed and not yet stored or failed: only these can free a waiting taker. */
	#returning = 0;
	readonly #waiting: (() => void)[] = [];

	constructor(
		/** Packs that may exist at once while one is on its way out. */
		readonly limit: number,
	) {}

	/**
	 * A place for a new pack. Waits while the cap is reached and a closed pack will free one;
	 * when every place belongs to an open pack (several locks at once), takes one more, as
	 * waiting would never end.
	 */
	async take(): Promise<void> {
		while (this.#out >= this.limit && this.#returning > 0) {
			await new Promise<void>((resolve) => this.#waiting.push(resolve));
		}
		this.#out++;
	}

	/** A pack is closed: its place comes back once it is stored, empty or failed (`release`). */
	closing(): void {
		this.#returning++;
	}

	/** A closed pack is done with, stored or not: its place is free again. */
	release(): void {
		this.#out--;
		this.#returning--;
		for (const wake of this.#waiting.splice(0)) wake();
	}

	/** Places in use now, for tests. */
	get inUse(): number {
		return this.#out;
	}
}
