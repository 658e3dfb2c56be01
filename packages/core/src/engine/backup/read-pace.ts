/**
 * How long main-thread work runs before it lets the event loop turn. A walk over cached
 * metadata, or the count of what earlier snapshots use, settles its awaits at once and would
 * otherwise hold the loop for a second or more, while the reads' callbacks (a buffer read, a
 * worker's cut) wait: the files read meanwhile would make no progress.
 */
const SLICE_MS = 4;

/** A pace: yields to the event loop once a slice of work has run since it last did, else returns undefined. */
export function yieldToReads(): () => Promise<void> | undefined {
	let since = performance.now();
	return () => {
		if (performance.now() - since < SLICE_MS) return undefined;
		return new Promise<void>((resolve) =>
			setImmediate(() => {
				since = performance.now();
				resolve();
			}),
		);
	};
}
