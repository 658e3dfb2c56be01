/**
 * Seconds for fs.utimes from the format's nanoseconds. libuv truncates what it is given to
 * whole microseconds after a float multiply, so a value exactly on a microsecond lands one
 * below about half the time: aim at the middle of the microsecond instead.
 */
export function nsToUtimeSeconds(ns: string): number | Date {
	const value = BigInt(ns);
	// Node turns negative numbers into "now"; a Date keeps times before 1970 (to the millisecond).
	if (value < 0n) return new Date(Number(value / 1_000_000n));
	const micros = value / 1000n;
	return Number(micros / 1_000_000n) + (Number(micros % 1_000_000n) + 0.5) / 1e6;
}

/** The format's nanoseconds as the whole microseconds a restore can set. */
export function nsToMicros(ns: string | bigint): bigint {
	return BigInt(ns) / 1000n;
}
