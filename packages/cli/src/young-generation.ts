import { PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";

/**
 * The main thread's young generation (both halves) during a backup. V8 grows it to 32 MiB,
 * resident all run long. Capped at 8 MiB, with the old generation's growth at 20 % (main.ts),
 * three interleaved first backups of 50,000 small files (scale 0.25) peaked at 186–190 MiB
 * against 206–220 with neither, at 4.05–4.14 against 3.76–3.95 s of user CPU (the main thread
 * collects for about 0.2 s more) and 3.14–3.24 against 2.88–3.14 s of wall time. The memory
 * target is met only so; the time is the price. At 16 MiB with the 20 %: 192–198 MiB.
 */
export const BACKUP_YOUNG_GENERATION = 8 * 1024 * 1024;

/**
 * The same for restore and check, whose main thread plans every file. It was held to 2 MiB by
 * a semi-space flag, where V8 cannot grow it at all: restoring 200,000 small files (into tmpfs,
 * interleaved) took 8.4–9.6 s and collected for a third of the main thread's time. Capped here
 * (a busy thread gets one doubling or two past the cap before the watcher hears of it): 7.6–8.1
 * s, and the same at 8 MiB. A mixed restore (scale 0.25) peaked at 153–160 MiB before, 156–161
 * with this cap and 164–167 with 8 MiB.
 */
export const RESTORE_YOUNG_GENERATION = 2 * 1024 * 1024;

/**
 * Keeps this thread's young generation from growing past `bytes`, or one doubling past it when
 * collections come faster than the observer hears of them. Only a flag at start-up sets V8's
 * limit; what can be set later is how much the space grows, read each time it does, so growth
 * stops once it is this large. A worker started later puts the default back for every thread:
 * it is set again after each collection. Returns a function that stops watching.
 */
export function capYoungGeneration(bytes: number): () => void {
	const observer = new PerformanceObserver(() => {
		const young = getHeapSpaceStatistics().find((space) => space.space_name === "new_space");
		if (young && young.space_size >= bytes) setFlagsFromString("--semi-space-growth-factor=1");
	});
	observer.observe({ entryTypes: ["gc"] });
	return () => observer.disconnect();
}
