import { PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";

/**
 * The main thread's young generation (both halves) during a backup. V8 grows it to 32 MiB,
 * resident all run long; at 16 MiB a backup's collections cost about 2 % more CPU. At 8 MiB,
 * against 16, three interleaved first backups at scale 0.25 peaked 185–189 against 202–211 MiB
 * (50,000 small files) and 208–218 against 218–231 (mixed set), with user CPU 3.98–4.08
 * against 3.77–4.06 s and 2.11–2.14 against 2.00–2.21 s.
 */
export const BACKUP_YOUNG_GENERATION = 8 * 1024 * 1024;

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
