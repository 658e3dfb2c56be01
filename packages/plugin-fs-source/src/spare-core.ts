import { availableParallelism } from "node:os";

/**
 * Whether the machine has a core to spare for the lister. Listing ahead moves work off the
 * walk's thread; it pays where that thread sets the pace and another core idles (a backup
 * with little to read: 50,000 small files unchanged, 2.56 -> 2.23 s). Where the sealing
 * workers already keep every core busy (a first backup), it only adds its messages: the same
 * 50,000 files backed up the first time took 4.40-4.48 s without it and 4.64-4.85 s with it,
 * on two cores. So the walk asks, from how much CPU the process used since it last asked,
 * before it starts one.
 */
export class SpareCore {
	#cpu = process.cpuUsage();
	#at = performance.now();

	constructor(private readonly cores = availableParallelism()) {}

	/**
	 * Cores the process kept busy since the last call (or since it was made); undefined when
	 * too little time has passed to tell.
	 */
	busy(): number | undefined {
		const now = performance.now();
		const elapsedMs = now - this.#at;
		if (elapsedMs < MIN_WINDOW_MS) return undefined;
		const used = process.cpuUsage(this.#cpu);
		this.#cpu = process.cpuUsage();
		this.#at = now;
		return (used.user + used.system) / 1000 / elapsedMs;
	}

	/** Whether a lister may start: the process leaves most of a core idle. */
	roomToStart(busy: number): boolean {
		return this.cores >= PLENTY || busy <= this.cores - START_IDLE;
	}
}

/** With this many cores there is always one to spare. */
const PLENTY = 4;
/**
 * Idle share of a core the process must leave for a lister to start. On two cores, a walk
 * with little to read kept the process 1.1–1.2 cores busy before the lister started; a first
 * backup, 1.7–1.9.
 */
const START_IDLE = 0.7;
/** Shorter windows say little about how busy the process is. */
const MIN_WINDOW_MS = 50;
